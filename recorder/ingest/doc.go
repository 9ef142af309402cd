// Package ingest pulls each camera's video once over RTSP and publishes it to the
// camera's streaming.Stream as access units with their codec parameters and
// continuous timestamps. A Camera reconnects with jittered backoff, detects stalls and
// discontinuities (counted as gaps), and reports its status; it never waits on a
// reader of its stream.
package ingest
