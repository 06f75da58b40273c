package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusOK)
		case "/slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name, addr, path string
		ok               bool
	}{
		{"ready", addr, "/readyz", true},
		{"not ready", addr, "/other", false},
		{"nothing listens", closedAddr, "/readyz", false},
		{"relative path", addr, "readyz", false},
		{"path with a space", addr, "/a b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := probe(tc.addr, tc.path)
			assert.Equal(t, tc.ok, err == nil, "err = %v", err)
		})
	}
}
