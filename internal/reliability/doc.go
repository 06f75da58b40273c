// Package reliability holds the tests that attack the real binaries from
// outside, over TCP on 127.0.0.1: hostile raw requests, 5,000 concurrent
// connections, slow clients, and files damaged while a shard serves them.
// They run the shard (cmd/lineserver), the Go router (cmd/router) and
// NGINX with the configuration that `lines nginx` renders, and print what
// each one answered and the figures the README's "Reliability" section
// quotes. The package has no code of its own.
package reliability
