// The vCenter the test suite talks to: govmomi's simulator (the one terraform-provider-vsphere tests
// against), started on 127.0.0.1 with one datacenter, a DRS cluster of three hosts and a few VMs. It
// prints the SDK URL on one line and serves until its stdin closes, so a test that dies takes it along.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "address to listen on")
	user := flag.String("username", "", "the only user name accepted (empty: any)")
	password := flag.String("password", "", "the only password accepted (empty: any)")
	flag.Parse()

	model := simulator.VPX()
	model.ClusterHost = 3
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	model.Service.Listen = mustURL(*listen, *user, *password)
	// HTTPS with the simulator's own certificate, as a lab vCenter's (allow_unverified_ssl).
	model.Service.TLS = new(tls.Config)
	server := model.Service.NewServer()
	defer server.Close()
	fmt.Println(server.URL.String())
	// Block until the parent closes our stdin (or dies).
	_, _ = bufio.NewReader(os.Stdin).ReadString(0)
}
