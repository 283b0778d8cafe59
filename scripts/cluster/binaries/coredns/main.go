// CoreDNS with only the plugins the cluster's Corefile uses (scripts/cluster/addons.yaml):
// the upstream binary links every plugin, cloud SDKs included, which more than doubles
// its build. Plugins register themselves when imported; coremain runs the server.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
