// probe: the tiny test image of the cluster scripts (no upstream code, standard library only).
//
//	probe serve [addr]     HTTP server (default :8080): "/" says hello with the pod name, /healthz
//	probe lookup NAME...   resolves each NAME with the pod's resolver; exit 1 on failure
//	probe get URL [TRIES]  GET URL (retrying once a second), print the body; exit 1 unless 200
//	probe sleep            block forever (a pod to exec into)
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe serve [addr] | lookup NAME... | get URL | sleep")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		addr := ":8080"
		if len(os.Args) > 2 {
			addr = os.Args[2]
		}
		serve(addr)
	case "lookup":
		ok := true
		for _, name := range os.Args[2:] {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			addrs, err := net.DefaultResolver.LookupHost(ctx, name)
			cancel()
			if err != nil {
				fmt.Printf("%s: %v\n", name, err)
				ok = false
				continue
			}
			fmt.Printf("%s: %v\n", name, addrs)
		}
		if !ok {
			os.Exit(1)
		}
	case "get":
		if len(os.Args) < 3 || len(os.Args) > 4 {
			fmt.Fprintln(os.Stderr, "usage: probe get URL [TRIES]")
			os.Exit(2)
		}
		tries := 1
		if len(os.Args) == 4 {
			if _, err := fmt.Sscan(os.Args[3], &tries); err != nil || tries < 1 {
				fmt.Fprintln(os.Stderr, "TRIES must be a positive number")
				os.Exit(2)
			}
		}
		var err error
		for i := 0; i < tries; i++ {
			if i > 0 {
				time.Sleep(time.Second)
			}
			if err = get(os.Args[2]); err == nil {
				return
			}
		}
		fmt.Println(err)
		os.Exit(1)
	case "sleep":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func get(url string) error {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	fmt.Print(string(body))
	return nil
}

func serve(addr string) {
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	fmt.Printf("probe: serving on %s\n", addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
