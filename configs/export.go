package configs

import "time"

// Export configures clip export (signed evidence clips).
type Export struct {
	// MaxRange is the longest range one export may cover (1m..1h, playback's
	// longest movie; default 1h).
	MaxRange Duration `yaml:"max_range,omitempty"`
	// Workers is how many exports run at once (1..8; default 1): each reads every
	// source segment whole, so more would only share the same disk and network.
	Workers int `yaml:"workers,omitempty"`
	// Queue is how many more may wait; beyond it a request gets 429 (0..100; default 8).
	Queue int `yaml:"queue,omitempty"`
	// MinFree is the free space an export must leave on the data_dir disk
	// (default 1GiB): it is refused rather than fill the disk the spool shares.
	MinFree ByteSize `yaml:"min_free,omitempty"`
	// Keep is how long a finished export's files stay in data_dir/exports before the
	// service deletes them (its row stays, marked deleted); 0 keeps them forever.
	// Default 30d; otherwise at least 1m.
	Keep Duration `yaml:"keep"`
}

func defaultExport() Export {
	return Export{MaxRange: Duration(time.Hour), Workers: 1, Queue: 8, MinFree: 1 << 30, Keep: Duration(30 * 24 * time.Hour)}
}

func (c *Config) validateExport(bad func(path, format string, args ...any)) {
	if err := checkRange(c.Export.MaxRange, time.Minute, time.Hour); err != "" {
		bad("export.max_range", "%s", err)
	}
	if n := c.Export.Workers; n < 1 || n > 8 {
		bad("export.workers", "must be 1..8, got %d", n)
	}
	if n := c.Export.Queue; n < 0 || n > 100 {
		bad("export.queue", "must be 0..100, got %d", n)
	}
	if c.Export.MinFree < 0 {
		bad("export.min_free", "must not be negative")
	}
	if k := time.Duration(c.Export.Keep); k < 0 || (k > 0 && k < time.Minute) {
		bad("export.keep", "must be 0 (keep exports forever) or at least 1m, got %s", c.Export.Keep)
	}
}
