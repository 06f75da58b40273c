// Command ceiling is the load test's yardstick: a function on the same
// Functions Framework as the shard that answers every request with the
// same 50-byte body and does nothing else, so its requests per second are
// the most the framework gives on this machine. `lines bench` compares the
// shard against it. It serves on PORT (default 8080); FUNCTION_TARGET
// defaults to Constant.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

// body is the constant answer: 50 bytes, its '\n' included.
var body = []byte("a constant body of fifty bytes for the ceiling...\n")

func init() { functions.HTTP("Constant", constant) }

func constant(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Content-Length"] = []string{"50"}
	w.Write(body)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "Constant")
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	return funcframework.Start(port)
}
