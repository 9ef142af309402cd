package configs

import _ "embed"

// DemoYAML is the configuration of the demo: two sites and four simulated cameras.
// Its camera URLs point at 127.0.0.1:8554; the demo replaces host and port with
// those of its camera simulator.
//
//go:embed demo.yaml
var DemoYAML []byte

// Demo parses DemoYAML (environment overrides apply, as in Load).
func Demo() (*Config, error) { return Parse(DemoYAML, "demo.yaml") }
