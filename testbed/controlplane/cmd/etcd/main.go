// Command etcd is the upstream etcd server at the version kube-apiserver's own module graph
// selects, so client and server never skew.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
