// knp-nftables: looks at or removes the nftables table of kube-network-policies in the current
// network namespace (run it in the node's: `nsenter --net=/run/netns/symptomdx-node`), through
// netlink with the same library the enforcer uses (github.com/google/nftables), as no `nft`
// binary is installed here.
//
//	knp-nftables show     the table's chains (hook, priority, rule count) and the pod IPs in its
//	                      sets (the pods that policies select, whose new connections are queued);
//	                      exit 1 if there is no table
//	knp-nftables delete   delete the table (nothing to do when there is none)
//
// The enforcer deletes its table itself when it stops on SIGINT; when it is killed otherwise, a
// table left behind keeps queueing new connections of the selected pods to an NFQUEUE nobody
// reads, and the kernel drops them (the enforcer runs fail-closed): `netpol.sh uninstall` calls
// `delete` after the DaemonSet is gone.
package main

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
)

const tableName = "kube-network-policies" // the enforcer's default (Config.NFTableName)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "show" && os.Args[1] != "delete") {
		fmt.Fprintln(os.Stderr, "usage: knp-nftables show|delete")
		os.Exit(2)
	}
	conn, err := nftables.New()
	if err != nil {
		fail(err)
	}
	table, err := conn.ListTableOfFamily(tableName, nftables.TableFamilyINet)
	if err != nil || table == nil {
		if os.Args[1] == "delete" {
			fmt.Printf("no table inet %s\n", tableName)
			return
		}
		fmt.Printf("no table inet %s (%v)\n", tableName, err)
		os.Exit(1)
	}
	if os.Args[1] == "delete" {
		conn.DelTable(table)
		if err := conn.Flush(); err != nil {
			fail(err)
		}
		fmt.Printf("deleted table inet %s\n", tableName)
		return
	}
	fmt.Printf("table inet %s\n", tableName)
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		fail(err)
	}
	for _, c := range chains {
		if c.Table.Name != tableName {
			continue
		}
		rules, err := conn.GetRules(table, c)
		if err != nil {
			fail(err)
		}
		hook, prio := "-", "-"
		if c.Hooknum != nil {
			hook = fmt.Sprint(*c.Hooknum)
		}
		if c.Priority != nil {
			prio = fmt.Sprint(*c.Priority)
		}
		fmt.Printf("chain %s hook %s priority %s rules %d\n", c.Name, hook, prio, len(rules))
	}
	sets, err := conn.GetSets(table)
	if err != nil {
		fail(err)
	}
	for _, s := range sets {
		elems, err := conn.GetSetElements(s)
		if err != nil {
			fail(err)
		}
		fmt.Printf("set %s:", s.Name)
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				fmt.Printf(" %s", a)
			}
		}
		fmt.Println()
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "knp-nftables:", err)
	os.Exit(1)
}
