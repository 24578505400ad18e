// Wrapper main for etcd: the upstream go.etcd.io/etcd/v3 main module replaces its
// sub-modules with local paths, so `go install` of it fails; etcdmain is its entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
