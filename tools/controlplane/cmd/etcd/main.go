// Command etcd is etcd's own server entry point (go.etcd.io/etcd/server/v3/etcdmain), built here because
// etcd's root module carries replace lines and cannot be installed with `go install`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
