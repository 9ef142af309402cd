package storage

import (
	"path/filepath"
	"strings"
	"testing"
)

// The listing reads one range of the covering index: no table rows (so no fragment
// blobs) and no sort, whatever the page's depth.
func TestListSegmentsQueryPlan(t *testing.T) {
	c, err := OpenCatalog(filepath.Join(t.TempDir(), "catalog.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+listSegmentsSQL, "gate", 0, 1, 0, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	got := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", got)
	if !strings.Contains(got, "SEARCH segments USING COVERING INDEX segments_camera_start_key (camera=? AND start_ms>? AND start_ms<?)") ||
		strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("listing is not one covering-index range scan without a sort:\n%s", got)
	}
}
