// Package e2e tests the whole set end to end: real shard processes
// (cmd/lineserver), real NGINX with the rendered config and the Go router
// (cmd/router), read through both front doors and compared byte for byte,
// while shards and replicas are killed, stopped and restarted.
package e2e
