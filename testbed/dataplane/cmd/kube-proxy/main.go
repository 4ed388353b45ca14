// Command kube-proxy is the upstream kube-proxy at the apiserver's version, so the bed's
// nodes forward packets with the real nftables and iptables rules a DOKS node would load.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
