// Package apispec checks docs/openapi.yaml against the real servers: its
// test builds and starts cmd/lineserver and cmd/router, sends requests that
// reach every response the description lists, and validates each request
// and answer with kin-openapi's openapi3filter. It has no code of its own.
//
// It is a package of its own, like internal/e2e, rather than a test of the
// root package: it starts processes and takes seconds, and it keeps
// kin-openapi out of the root package's tests.
package apispec
