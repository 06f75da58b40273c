// Command probe asks a server in the same container whether it is ready, for
// container health checks in images that have no shell and no curl:
//
//	probe [PATH]
//
// It sends GET PATH (default /readyz) to 127.0.0.1:$PORT (default 8080) and
// exits 0 on a 200 answer within two seconds, 1 otherwise. It speaks just
// enough HTTP/1.0 to read the status line, so that it adds a few hundred
// kilobytes to the image rather than the size of net/http.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

const timeout = 2 * time.Second

func main() {
	path := "/readyz"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := probe(net.JoinHostPort("127.0.0.1", port), path); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// probe sends GET path to addr and returns nil if the answer is 200.
func probe(addr, path string) error {
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n") {
		return fmt.Errorf("path %q: want an absolute path without spaces", path)
	}
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.0\r\nHost: "+addr+"\r\nUser-Agent: probe\r\n\r\n"); err != nil {
		return err
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the answer from %s: %w", addr, err)
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		return fmt.Errorf("GET %s: %s", path, strings.TrimSpace(status))
	}
	return nil
}
