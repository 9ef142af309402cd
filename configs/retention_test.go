package configs

import (
	"testing"
	"time"
)

func TestRetentionConfig(t *testing.T) {
	t.Setenv("STRAJA_CAM_BASTION_GATE_PASSWORD", "p@ss/w0rd")
	t.Setenv("STRAJA_S3_SECRET_KEY", "minio-secret-123")
	cfg, err := Load("straja.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Retention
	if r.Timezone != "Europe/Bucharest" || r.Location().String() != "Europe/Bucharest" || r.SafetyStopPercent != 50 ||
		r.MaxBytes != 40e12 || len(r.Policies) != 3 {
		t.Fatalf("retention = %+v", r)
	}
	ps := cfg.RetentionPolicies()
	if p := ps[2]; p.Name != "gate-evidence" || p.MaxAge != 60*24*time.Hour || p.MaxBytes != 2e12 ||
		p.Schedule != "@daily" || p.Source != "file" || p.Cameras[0] != "bastion-gate" {
		t.Errorf("policy = %+v", p)
	}
	if ps[0].Schedule != "@hourly" {
		t.Errorf("default schedule = %q, want @hourly", ps[0].Schedule)
	}

	d := Default()
	d.fillDefaults()
	if d.Retention.Timezone != "Europe/Bucharest" || !d.Retention.MinFree.IsZero() || d.Retention.GuardInterval != Duration(10*time.Second) {
		t.Errorf("default retention = %+v", d.Retention)
	}
	for in, want := range map[string]FreeSpace{"10%": {Percent: 10}, "2.5 %": {Percent: 2.5}, "20GB": {Bytes: 20e9}, "1048576": {Bytes: 1 << 20}} {
		var f FreeSpace
		if err := f.UnmarshalText([]byte(in)); err != nil || f != want {
			t.Errorf("FreeSpace(%q) = %+v, %v; want %+v", in, f, err, want)
		}
	}
	for _, in := range []string{"0%", "100%", "-5%", "lots"} {
		var f FreeSpace
		if err := f.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("FreeSpace(%q) = %+v, want an error", in, f)
		}
	}
}
