// govmomi's own vcsim command is a module with a replace line (../), which cannot be built by version;
// this module requires govmomi and builds a small main on its simulator package instead.
module dsaas.example/vcsim

go 1.25.0

require github.com/vmware/govmomi v0.52.0

require github.com/google/uuid v1.6.0 // indirect
