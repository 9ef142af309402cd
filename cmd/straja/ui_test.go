package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Bucharest on any machine

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/straja-nvr/straja/internal/testutil"
)

// TestUIBrowser drives every page of the UI in headless Chromium against the demo:
// real sign-in, the demo's users (guard granted site bastion, admin both sites, itc),
// simulated cameras and WebRTC. Screenshots go to uiArtifacts, named in the log.
func TestUIBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	testutil.NeedChromium(t)
	const password = "Demo-parola-1"
	m, err := demoMain([]string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--demo-password", password},
		io.Discard, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	m.Out = io.Discard
	if err := m.Run(t.Context()); err != nil {
		m.Sim.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	problems := &uiProblems{}
	u := &uiSession{t: t, base: "http://" + m.Addr(), ctx: newUIBrowser(t, problems.listen), dir: uiArtifacts(t)}
	bastion := []string{"bastion-courtyard", "bastion-gate"}

	t.Run("catalogues have the same keys", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/login.html")
		problems := uiEval[[]string](u, `(async () => {
			const ro = (await import('/ui/i18n/ro.js')).default, en = (await import('/ui/i18n/en.js')).default;
			const out = [];
			const walk = (a, b, path, aName, bName) => {
				for (const k of Object.keys(a)) {
					const p = path ? path + '.' + k : k;
					if (!(k in b)) { out.push(p + ' is in ' + aName + ' only'); continue; }
					if (typeof a[k] !== typeof b[k]) out.push(p + ' is a ' + typeof a[k] + ' in ' + aName + ', a ' + typeof b[k] + ' in ' + bName);
					else if (typeof a[k] === 'object') walk(a[k], b[k], p, aName, bName);
				}
			};
			walk(ro, en, '', 'ro.js', 'en.js');
			walk(en, ro, '', 'en.js', 'ro.js');
			return [...new Set(out)];
		})()`)
		for _, p := range problems {
			t.Error(p)
		}
	})

	t.Run("times are shown in Bucharest", func(t *testing.T) {
		u.t = t
		got := uiEval[[]string](u, `(async () => {
			const s = await import('/ui/strings.js');
			return [s.bucharestToUTC('2026-07-01T12:00').toISOString(), s.bucharestToUTC('2026-12-01T12:00:30').toISOString(),
				s.fmtTime('2026-12-01T10:00:00Z'), s.utcToBucharestInput(new Date('2026-07-01T09:05:06Z'))];
		})()`)
		want := []string{"2026-07-01T09:00:00.000Z", "2026-12-01T10:00:30.000Z", "12:00:00", "2026-07-01T12:05:06"}
		if !slices.Equal(got, want) {
			t.Errorf("summer and winter conversions: %q, want %q", got, want)
		}
	})

	t.Run("login page in both languages", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/login.html")
		u.langCheck("login")
	})

	t.Run("wrong password says so", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/login.html")
		u.fillLogin("guard", "Not-the-password-1")
		u.waitJS(10*time.Second, "the error", `!document.getElementById('error').hidden`)
		if got := uiEval[string](u, `document.getElementById('error').textContent`); got != "Nume de utilizator sau parolă greșită." {
			t.Errorf("error %q", got)
		}
		if p := uiEval[string](u, `location.pathname`); p != "/ui/login.html" {
			t.Errorf("after a wrong password the browser is at %s", p)
		}
	})

	var guardCookie string
	t.Run("guard sees only granted cameras live", func(t *testing.T) {
		u.t = t
		// The page sends an anonymous browser to sign in, and comes back after.
		u.navigate("/?layout=4")
		u.waitJS(10*time.Second, "the login page", `location.pathname === '/ui/login.html'`)
		u.fillLogin("guard", password)
		u.waitJS(15*time.Second, "the live grid", `location.pathname === '/' && document.querySelectorAll('.tile').length > 0`)
		for _, id := range bastion {
			u.waitJS(30*time.Second, id+" decoding", fmt.Sprintf(`(async () => {
				const p = window.strajaPlayers.get(%q); if (!p || !p.pc) return false;
				let n = 0; (await p.pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0 });
				return n > 0 && document.querySelector('.tile[data-camera=%[1]q]').dataset.state === 'live' })()`, id))
		}
		tiles := uiEval[[]string](u, `[...document.querySelectorAll('.tile')].map(e => e.dataset.camera).sort()`)
		if !slices.Equal(tiles, bastion) {
			t.Errorf("the guard's grid shows %q, want %q (site bastion only)", tiles, bastion)
		}
		if links := u.navLinks(); !slices.Equal(links, []string{"live", "playback"}) {
			t.Errorf("the guard's header links %q, want live and playback", links)
		}
		u.waitJS(5*time.Second, "the summary counting both tiles live", `document.getElementById('summary').textContent === '2 camere, 2 în direct'`)
		// Camera states come from the event stream; the list is polled only slowly.
		u.waitJS(10*time.Second, "the event stream open", `window.strajaEvents.open === true`)
		if who := uiEval[string](u, `document.getElementById('user').innerText`); !strings.Contains(who, "guard") || !strings.Contains(who, "Agent de pază") {
			t.Errorf("user menu %q lacks the username or the role", who)
		}
		u.shot("guard-live.png")

		guardCookie = u.cookie()
		for _, path := range []string{"/api/v1/users", "/api/v1/audit"} {
			if code, _ := uiGet(t, u.base+path, guardCookie); code != http.StatusForbidden {
				t.Errorf("GET %s with the guard's cookie: %d, want 403", path, code)
			}
		}
		if code, _ := uiGet(t, u.base+"/api/v1/me", guardCookie); code != http.StatusOK {
			t.Errorf("GET /api/v1/me with the guard's cookie: %d, want 200", code)
		}
		// The pages themselves say the role cannot use them.
		for _, p := range []string{"/ui/users.html", "/ui/audit.html"} {
			u.navigate(p)
			u.waitJS(10*time.Second, p+" refused", `document.getElementById('forbidden') !== null`)
			if links := u.navLinks(); !slices.Equal(links, []string{"live", "playback"}) {
				t.Errorf("%s: header links %q, want live and playback", p, links)
			}
		}
	})

	t.Run("each tile shows the time of its frame, in Bucharest", func(t *testing.T) {
		u.t = t
		u.navigate("/?layout=4")
		u.waitLive(bastion)
		bucharest, err := time.LoadLocation("Europe/Bucharest")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range bastion {
			u.waitJS(10*time.Second, id+" frame time", fmt.Sprintf(`(() => { const e = document.querySelector('.tile[data-camera=%q] .frame-time'); return !!e && !e.hidden && e.textContent !== '' })()`, id))
			shown := uiEval[string](u, fmt.Sprintf(`document.querySelector('.tile[data-camera=%q] .frame-time').textContent`, id))
			src := uiEval[string](u, fmt.Sprintf(`window.strajaPlayers.get(%q).frameTimeSource`, id))
			now := time.Now().In(bucharest)
			at, err := time.ParseInLocation("2006-01-02 15:04:05", now.Format("2006-01-02 ")+shown, bucharest)
			if err != nil {
				t.Fatalf("%s shows %q, not HH:MM:SS", id, shown)
			}
			// The frame is at most seconds old; shown in UTC or the browser's zone it
			// would be hours off.
			if d := now.Sub(at); d < -time.Minute || d > time.Minute {
				t.Errorf("%s shows %s (%s time), Bucharest is at %s", id, shown, src, now.Format("15:04:05"))
			}
			t.Logf("%s: frame time %s from %s", id, shown, src)
			// The time follows the picture: a second later it shows a later frame.
			t0 := uiEval[float64](u, fmt.Sprintf(`window.strajaPlayers.get(%q).frameTime`, id))
			u.waitJS(10*time.Second, id+" frame time advancing", fmt.Sprintf(`window.strajaPlayers.get(%q).frameTime >= %f`, id, t0+1000))
		}
	})

	t.Run("a camera cut off shows from the event stream", func(t *testing.T) {
		u.t = t
		u.navigate("/?layout=4")
		u.waitLive(bastion)
		u.waitJS(10*time.Second, "the event stream open", `window.strajaEvents.open === true`)
		before := uiEval[float64](u, `window.strajaEvents.cameraStates`)
		if err := m.Sim.StopCamera(2); err != nil { // bastion-courtyard
			t.Fatal(err)
		}
		// The list is polled every 30 s while the stream is open: the event brings it.
		u.waitJS(15*time.Second, "the tile offline", fmt.Sprintf(`window.strajaEvents.cameraStates > %v &&
			document.querySelector('.tile[data-camera="bastion-courtyard"]').dataset.state === 'offline'`, before))
		if err := m.Sim.StartCamera(2); err != nil {
			t.Fatal(err)
		}
		u.waitLive(bastion)
	})

	t.Run("live page in both languages", func(t *testing.T) {
		u.t = t
		u.waitLive(bastion)
		u.langCheck("live")
	})

	t.Run("guard replays the last 30 seconds", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/playback.html?camera=bastion-gate")
		u.waitJS(15*time.Second, "the timeline with footage", `document.documentElement.dataset.ready === 'true' &&
			Number(document.getElementById('timeline').dataset.recorded) > 0`)
		u.langCheck("playback")
		// Wait until there are 30 s of footage, then play from 30 s ago: near-live footage
		// still in the spool.
		u.waitJS(60*time.Second, "30 s of footage", `(async () => {
			const q = new URLSearchParams({ from: new Date(Date.now() - 40000).toISOString(), to: new Date().toISOString(), buckets: '40' });
			const tl = await (await fetch('/api/v1/cameras/bastion-gate/timeline?' + q)).json();
			return tl.recorded.length > 0 && Date.parse(tl.recorded[0].start) < Date.now() - 31000 })()`)
		u.run(chromedp.Evaluate[bool](`document.getElementById('near-live').click(), true`))
		u.waitJS(20*time.Second, "the video playing", `(() => { const v = document.getElementById('video');
			return !v.error && v.currentTime > 1 && document.getElementById('clock').textContent !== '' })()`)
		if e := uiEval[string](u, `String(document.getElementById('video').error && document.getElementById('video').error.code)`); e != "null" {
			t.Errorf("media error %s", e)
		}
		u.shot("guard-playback.png")
		// Hovering over footage of 10 s ago draws its keyframe in the preview.
		u.run(chromedp.Evaluate[bool](`(() => {
			const c = document.getElementById('timeline'), r = c.getBoundingClientRect();
			const from = Number(c.dataset.from), to = Number(c.dataset.to), t = Date.now() - 10000;
			const x = r.left + (t - from) / (to - from) * r.width;
			c.dispatchEvent(new PointerEvent('pointermove', { clientX: x, clientY: r.top + 10, bubbles: true }));
			return true })()`))
		u.waitJS(10*time.Second, "the preview drawn", `(() => { const c = document.getElementById('preview-canvas');
			if (!c.dataset.drawn) return false;
			const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			let lit = 0; for (let i = 0; i < px.length; i += 4) if (px[i] + px[i+1] + px[i+2] > 60) lit++;
			return lit > px.length / 16 })()`)
	})

	t.Run("sign out ends the session", func(t *testing.T) {
		u.t = t
		u.logout()
		if code, _ := uiGet(t, u.base+"/api/v1/me", guardCookie); code != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/me with the signed-out cookie: %d, want 401", code)
		}
	})

	t.Run("admin sees the guard's live view in the audit page", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/login.html")
		u.fillLogin("admin", password)
		u.waitJS(15*time.Second, "the audit page", `location.pathname === '/ui/audit.html' && document.documentElement.dataset.ready === 'true'`)
		if links := u.navLinks(); !slices.Equal(links, []string{"audit", "exports", "holds", "verify", "playback"}) {
			t.Errorf("the admin's header links %q, want audit, exports, holds, verify and playback", links)
		}
		guardLive := `[...document.querySelectorAll('#entries tbody tr')].filter(tr => tr.cells.length === 6 &&
			tr.cells[3].dataset.action === 'live.start' && tr.cells[1].textContent === 'guard')`
		u.run(chromedp.Evaluate[bool](`document.getElementById('f-user').value = 'guard',
			document.getElementById('f-action').value = 'live.start',
			document.getElementById('filters').requestSubmit(), true`))
		// The filtered page, not the unfiltered one it replaces: every row matches.
		u.waitJS(15*time.Second, "the guard's live.start entry", guardLive+`.length > 0 && `+guardLive+
			`.length === document.querySelectorAll('#entries tbody tr').length`)
		rows := uiEval[[]string](u, `[...document.querySelectorAll('#entries tbody tr')].map(tr => tr.innerText)`)
		for _, r := range rows {
			if !strings.Contains(r, "guard") || !strings.Contains(r, "Vizionare în direct începută") || !strings.Contains(r, "Poarta Bastionului") && !strings.Contains(r, "Curtea interioară") {
				t.Errorf("filtered row %q is not the guard's live view of a bastion camera", r)
			}
		}
		u.shot("admin-audit.png")
		href := uiEval[string](u, `document.getElementById('csv').href`)
		if !strings.Contains(href, "user=guard") || !strings.Contains(href, "action=live.start") || !strings.Contains(href, "format=csv") {
			t.Errorf("CSV link %q lacks the filters", href)
		}
		code, body := uiGet(t, href, u.cookie())
		if code != http.StatusOK || !strings.Contains(body, "live.start") || !strings.Contains(body, ",guard,") {
			t.Errorf("CSV download: %d %q", code, body)
		}
		u.langCheck("audit")

		// Pages follow the API's cursor, forwards and back.
		u.navigate("/ui/audit.html?limit=3")
		seqs := `[...document.querySelectorAll('#entries tbody tr')].map(tr => Number(tr.dataset.seq))`
		u.waitJS(10*time.Second, "the first page", seqs+`.length === 3`)
		first := uiEval[[]int](u, seqs)
		u.run(chromedp.Evaluate[bool](`document.getElementById('next').click(), true`))
		u.waitJS(10*time.Second, "the second page", `document.getElementById('page-label').textContent === 'Pagina 2' && `+seqs+`[0] !== `+fmt.Sprint(first[0]))
		second := uiEval[[]int](u, seqs)
		if len(second) == 0 || second[0] <= first[len(first)-1] || !slices.IsSorted(first) || !slices.IsSorted(second) {
			t.Errorf("pages %v then %v, want entries in seq order without repeats", first, second)
		}
		u.run(chromedp.Evaluate[bool](`document.getElementById('prev').click(), true`))
		u.waitJS(10*time.Second, "the first page again", `document.getElementById('page-label').textContent === 'Pagina 1'`)
		if again := uiEval[[]int](u, seqs); !slices.Equal(again, first) {
			t.Errorf("back on the first page: %v, was %v", again, first)
		}
	})

	t.Run("admin exports a clip", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/exports.html")
		u.waitJS(10*time.Second, "the exports page", `document.documentElement.dataset.ready === 'true'`)
		u.langCheck("exports")
		// Without a reason the page refuses, marking the field.
		u.run(chromedp.Evaluate[bool](`document.getElementById('x-reason').value = '',
			document.getElementById('request').requestSubmit(), true`))
		u.waitJS(5*time.Second, "the reason error", `!document.getElementById('error').hidden &&
			document.getElementById('x-reason').getAttribute('aria-invalid') === 'true'`)
		// A range the demo has recorded: its first stored segment of the gate camera.
		var segs struct {
			Segments []struct {
				Start time.Time `json:"start"`
				End   time.Time `json:"end"`
			} `json:"segments"`
		}
		testutil.WaitFor(t, 40*time.Second, "a stored segment of bastion-gate", func() bool {
			code, body := uiGet(t, u.base+"/api/v1/cameras/bastion-gate/segments", u.cookie())
			return code == http.StatusOK && json.Unmarshal([]byte(body), &segs) == nil && len(segs.Segments) > 0
		})
		sg := segs.Segments[0]
		u.run(chromedp.Evaluate[bool](fmt.Sprintf(`(async () => {
			const s = await import('/ui/strings.js');
			document.getElementById('x-camera').value = 'bastion-gate';
			document.getElementById('x-from').value = s.utcToBucharestInput(new Date(%q));
			document.getElementById('x-to').value = s.utcToBucharestInput(new Date(%q));
			document.getElementById('x-reason').value = 'Solicitare Poliția Timișoara 42/2026';
			document.getElementById('request').requestSubmit();
			return true })()`, sg.Start.Format(time.RFC3339), sg.End.Add(time.Second).Format(time.RFC3339)), chromedp.EvalAwaitPromise))
		u.waitJS(60*time.Second, "the export done", `[...document.querySelectorAll('#exports tbody tr')].some(tr =>
			tr.dataset.state === 'done' && tr.querySelector('a[data-file="bundle.zip"]'))`)
		if errs := uiEval[string](u, `document.getElementById('error').hidden ? '' : document.getElementById('error').textContent`); errs != "" {
			t.Errorf("the page shows an error: %s", errs)
		}
		u.shot("admin-exports.png")
		href := uiEval[string](u, `document.querySelector('#exports tbody tr[data-state="done"] a[data-file="manifest.json"]').href`)
		code, body := uiGet(t, href, u.cookie())
		if code != http.StatusOK || !strings.Contains(body, `"reason": "Solicitare Poliția Timișoara 42/2026"`) ||
			!strings.Contains(body, `"id": "bastion-gate"`) {
			t.Errorf("GET %s: %d %s", href, code, body)
		}
		u.langCheck("exports")

		// The Verify page checks the bundle in the browser, and names what a change broke.
		bundleURL := uiEval[string](u, `document.querySelector('#exports tbody tr[data-state="done"] a[data-file="bundle.zip"]').href`)
		code, bundle := uiGet(t, bundleURL, u.cookie())
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", bundleURL, code)
		}
		dir := t.TempDir()
		good := filepath.Join(dir, "bundle.zip")
		bad := filepath.Join(dir, "tampered.zip")
		if err := os.WriteFile(good, []byte(bundle), 0o644); err != nil {
			t.Fatal(err)
		}
		flipped := []byte(bundle)
		flipped[len(flipped)/3] ^= 0x01 // inside the clip, the zip's first and largest entry
		if err := os.WriteFile(bad, flipped, 0o644); err != nil {
			t.Fatal(err)
		}
		// The three files apart, the manifest edited.
		zr, err := zip.NewReader(strings.NewReader(bundle), int64(len(bundle)))
		if err != nil {
			t.Fatal(err)
		}
		var apart []string
		for _, f := range zr.File {
			if f.Name == "key.pem" || f.Name == "README.txt" {
				continue
			}
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			if f.Name == "manifest.json" {
				b = []byte(strings.Replace(string(b), "42/2026", "43/2026", 1))
			}
			p := filepath.Join(dir, f.Name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			apart = append(apart, p)
		}
		u.navigate("/ui/verify.html")
		u.waitJS(10*time.Second, "the verify page", `document.documentElement.dataset.ready === 'true'`)
		verify := func(files []string, want, failed string) {
			t.Helper()
			if _, err := chromedp.Run(u.ctx, chromedp.SetUploadFiles("#v-files", files)); err != nil {
				t.Fatal(err)
			}
			u.run(chromedp.Evaluate[bool](`document.getElementById('result').hidden = true,
				document.getElementById('check').requestSubmit(), true`))
			u.waitJS(30*time.Second, "the verdict", `!document.getElementById('result').hidden`)
			got := uiEval[[]string](u, `[document.getElementById('result').dataset.result, document.getElementById('result').dataset.failed,
				document.getElementById('result').innerText]`)
			if got[0] != want || got[1] != failed {
				t.Errorf("verify %v: %q (failed %q), want %q %q\n%s", files, got[0], got[1], want, failed, got[2])
			}
		}
		verify([]string{good}, "ok", "")
		if txt := uiEval[string](u, `document.getElementById('result').innerText`); !strings.Contains(txt, "Export autentic") ||
			!strings.Contains(txt, "Solicitare Poliția Timișoara 42/2026") {
			t.Errorf("verdict of a good bundle: %s", txt)
		}
		u.shot("admin-verify.png")
		u.langCheck("verify")
		verify([]string{bad}, "fail", "clip")
		verify(apart, "fail", "signature")

		// Deleting the export: a reason is asked for, then it shows as deleted, by whom and why.
		u.navigate("/ui/exports.html")
		u.waitJS(10*time.Second, "the exports page", `document.documentElement.dataset.ready === 'true'`)
		askDelete := func() {
			u.run(chromedp.Evaluate[bool](`document.querySelector('#exports tbody tr[data-state="done"] button[data-delete]').click(), true`))
			u.waitJS(5*time.Second, "the reason asked for", `!!document.getElementById('x-delete-reason')`)
		}
		askDelete()
		u.langCheck("exports-delete")
		askDelete() // the language check reloaded the page
		u.run(chromedp.Evaluate[bool](`document.querySelector('tr.confirm form').requestSubmit(), true`))
		u.waitJS(5*time.Second, "the delete reason error", `!document.getElementById('error').hidden &&
			document.getElementById('x-delete-reason').getAttribute('aria-invalid') === 'true'`)
		u.run(chromedp.Evaluate[bool](`(() => { const i = document.getElementById('x-delete-reason');
			i.value = 'Predat Poliției Timișoara'; i.dispatchEvent(new Event('input'));
			document.querySelector('tr.confirm form').requestSubmit(); return true })()`))
		u.waitJS(10*time.Second, "the export shown deleted", `[...document.querySelectorAll('#exports tbody tr')].some(tr =>
			tr.dataset.state === 'deleted' && tr.querySelector('.deleted-by').textContent.includes('Predat Poliției Timișoara') &&
			!tr.querySelector('a[data-file]'))`)
		u.shot("admin-exports-deleted.png")
		u.langCheck("exports")
	})

	t.Run("admin holds footage and releases it", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/holds.html")
		u.waitJS(10*time.Second, "the holds page", `document.documentElement.dataset.ready === 'true'`)
		u.langCheck("holds")
		// Without a reason the page refuses, marking the field.
		u.run(chromedp.Evaluate[bool](`document.getElementById('h-reason').value = '',
			document.getElementById('request').requestSubmit(), true`))
		u.waitJS(5*time.Second, "the reason error", `!document.getElementById('error').hidden &&
			document.getElementById('h-reason').getAttribute('aria-invalid') === 'true'`)
		// The API's refusal of a range ending before it starts marks "to".
		fill := func(from, to time.Time, reason string) {
			u.run(chromedp.Evaluate[bool](fmt.Sprintf(`(async () => {
				const s = await import('/ui/strings.js');
				document.getElementById('h-camera').value = 'bastion-gate';
				document.getElementById('h-from').value = s.utcToBucharestInput(new Date(%q));
				document.getElementById('h-to').value = s.utcToBucharestInput(new Date(%q));
				document.getElementById('h-reason').value = %q;
				document.getElementById('request').requestSubmit();
				return true })()`, from.Format(time.RFC3339), to.Format(time.RFC3339), reason), chromedp.EvalAwaitPromise))
		}
		now := time.Now().Truncate(time.Second)
		fill(now, now.Add(-time.Hour), "Dosar penal 77/P/2026")
		u.waitJS(10*time.Second, "the API's error on to", `!document.getElementById('error').hidden &&
			document.getElementById('h-to').getAttribute('aria-invalid') === 'true' &&
			document.getElementById('error').textContent.includes('after from')`)
		fill(now.Add(-10*time.Minute), now, "Dosar penal 77/P/2026")
		u.waitJS(10*time.Second, "the hold listed in force", `[...document.querySelectorAll('#holds tbody tr[data-hold]')].some(tr =>
			tr.dataset.status === 'active' && tr.innerText.includes('Dosar penal 77/P/2026'))`)
		id := uiEval[string](u, `document.querySelector('#holds tbody tr[data-status="active"]').dataset.hold`)
		if code, body := uiGet(t, u.base+"/api/v1/holds", u.cookie()); code != http.StatusOK ||
			!strings.Contains(body, `"id":"`+id+`"`) || !strings.Contains(body, `"by":"admin"`) {
			t.Errorf("GET /api/v1/holds: %d %s", code, body)
		}
		u.shot("admin-holds.png")
		u.langCheck("holds")
		// Release: without a reason the form refuses; with one the hold is released.
		u.run(chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector('#holds tr[data-hold=%q] button.release').click(), true`, id)))
		u.waitJS(5*time.Second, "the release form", fmt.Sprintf(`document.querySelector('#holds tr[data-release=%q]') !== null`, id))
		confirm := fmt.Sprintf(`document.querySelector('#holds tr[data-release=%q] button.primary').click(), true`, id)
		u.run(chromedp.Evaluate[bool](confirm))
		u.waitJS(5*time.Second, "the release reason error", fmt.Sprintf(`document.getElementById('release-reason-%s').getAttribute('aria-invalid') === 'true'`, id))
		u.run(chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById('release-reason-%s').value = 'Dosar clasat', true`, id)))
		u.run(chromedp.Evaluate[bool](confirm))
		u.waitJS(10*time.Second, "the hold released", fmt.Sprintf(`(() => { const tr = document.querySelector('#holds tr[data-hold=%q]');
			return tr && tr.dataset.status === 'released' && tr.innerText.includes('Dosar clasat') })()`, id))
		if code, body := uiGet(t, u.base+"/api/v1/holds", u.cookie()); code != http.StatusOK ||
			!strings.Contains(body, `"released_by":"admin"`) || !strings.Contains(body, `"release_reason":"Dosar clasat"`) {
			t.Errorf("GET /api/v1/holds after release: %d %s", code, body)
		}
		u.shot("admin-holds-released.png")
	})

	t.Run("admin takes a played range to the exports page", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/playback.html?camera=bastion-gate")
		u.waitJS(15*time.Second, "the timeline with footage", `document.documentElement.dataset.ready === 'true' &&
			Number(document.getElementById('timeline').dataset.recorded) > 0 && !document.getElementById('export-row').hidden`)
		u.langCheck("playback-admin") // reloads the page
		u.waitJS(15*time.Second, "the page again", `document.documentElement.dataset.ready === 'true' &&
			Number(document.getElementById('timeline').dataset.recorded) > 0`)
		u.run(chromedp.Evaluate[bool](`document.getElementById('near-live').click(), true`))
		u.waitJS(20*time.Second, "the video playing", `document.getElementById('video').currentTime > 0.5`)
		u.run(chromedp.Evaluate[bool](`document.getElementById('mark-in').click(), window.markedAt = document.getElementById('video').currentTime, true`))
		u.waitJS(10*time.Second, "a second more played", `document.getElementById('video').currentTime > window.markedAt + 1`)
		u.run(chromedp.Evaluate[bool](`document.getElementById('mark-out').click(), true`))
		href := uiEval[string](u, `document.getElementById('export').href`)
		q, err := url.Parse(href)
		if err != nil {
			t.Fatal(err)
		}
		from, err1 := time.Parse(time.RFC3339Nano, q.Query().Get("from"))
		to, err2 := time.Parse(time.RFC3339Nano, q.Query().Get("to"))
		if q.Path != "/ui/exports.html" || q.Query().Get("camera") != "bastion-gate" || err1 != nil || err2 != nil ||
			to.Sub(from) < time.Second || to.Sub(from) > 30*time.Second {
			t.Fatalf("export link %s: want the exports page with the marked second or more of bastion-gate", href)
		}
		u.run(chromedp.Evaluate[bool](`document.getElementById('export').click(), true`))
		u.waitJS(10*time.Second, "the exports page with the range", `location.pathname === '/ui/exports.html' &&
			document.documentElement.dataset.ready === 'true' && document.getElementById('x-camera').value === 'bastion-gate'`)
		want := from.In(bucharestLoc(t)).Format("2006-01-02T15:04:05")
		if got := uiEval[string](u, `document.getElementById('x-from').value`); got != want {
			t.Errorf("exports page from %q, want %q (Bucharest)", got, want)
		}
	})

	t.Run("itc adds a user", func(t *testing.T) {
		u.t = t
		u.logout()
		u.fillLogin("itc", password)
		u.waitJS(15*time.Second, "the users page", `location.pathname === '/ui/users.html' && document.querySelector('#users tbody tr[data-user="guard"]') !== null`)
		if links := u.navLinks(); !slices.Equal(links, []string{"users", "cameras", "health", "alerts", "retention"}) {
			t.Errorf("the itc header links %q, want users, cameras, health, alerts and retention", links)
		}
		u.langCheck("users")

		// A weak password: the API's reason shows, and the field is marked.
		u.run(chromedp.Evaluate[bool](`document.getElementById('add-username').value = 'paznic.noapte',
			document.querySelector('#add-roles input[value="guard"]').checked = true,
			document.getElementById('add-password').value = 'scurta',
			document.getElementById('add').requestSubmit(), true`))
		u.waitJS(10*time.Second, "the error", `!document.getElementById('add-error').hidden`)
		if msg := uiEval[string](u, `document.getElementById('add-error').textContent`); !strings.Contains(msg, "12") {
			t.Errorf("weak password error %q does not say why", msg)
		}
		if !uiEval[bool](u, `document.getElementById('add-password').getAttribute('aria-invalid') === 'true'`) {
			t.Error("the password field is not marked")
		}
		u.shot("itc-add-error.png")

		u.run(chromedp.Evaluate[bool](`document.getElementById('add-password').value = 'Noapte-lunga-7',
			document.querySelector('#add-grants input[value="site:bastion"]').click(),
			document.getElementById('add').requestSubmit(), true`))
		row := `document.querySelector('#users tbody tr[data-user="paznic.noapte"]')`
		u.waitJS(10*time.Second, "the new user's row", row+` !== null`)
		u.shot("itc-users.png")
		if got := u.grantsOf("paznic.noapte"); !slices.Equal(got, []string{"site:bastion"}) {
			t.Errorf("paznic.noapte added with grants %q, want site:bastion", got)
		}

		// Edit the grants: add the other site.
		u.run(chromedp.Evaluate[bool](row + `.querySelectorAll('.actions button')[2].click(), true`))
		editor := `document.querySelector('#users tbody tr.editor')`
		u.waitJS(10*time.Second, "the grants editor", editor+`?.dataset.editor === 'grants'`)
		u.run(chromedp.Evaluate[bool](editor + `.querySelector('input[value="site:palat"]').click(), ` +
			editor + `.querySelector('button.primary').click(), true`))
		u.waitJS(10*time.Second, "the grants saved", editor+` === null && `+row+`.querySelectorAll('.grant').length === 2`)
		if got := u.grantsOf("paznic.noapte"); !slices.Equal(got, []string{"site:bastion", "site:palat"}) {
			t.Errorf("paznic.noapte's grants after the edit: %q, want both sites", got)
		}

		// Edit the roles: none is refused in place, then guard and itc.
		u.run(chromedp.Evaluate[bool](row + `.querySelectorAll('.actions button')[3].click(), true`))
		u.waitJS(10*time.Second, "the roles editor", editor+`?.dataset.editor === 'roles'`)
		// The editor's texts follow the language (langCheck reloads, which would close it).
		texts := editor + `.innerText`
		ro := uiEval[string](u, texts)
		u.run(chromedp.Evaluate[bool](`document.getElementById('lang').click(), true`))
		u.waitJS(10*time.Second, "English", `document.documentElement.lang === 'en'`)
		en := uiEval[string](u, texts)
		u.run(chromedp.Evaluate[bool](`document.getElementById('lang').click(), true`))
		u.waitJS(10*time.Second, "Romanian again", `document.documentElement.lang === 'ro'`)
		if !strings.Contains(ro, "Personal IT&C") || !strings.Contains(en, "IT&C staff") || strings.Contains(ro+en, "⟦") {
			t.Errorf("the roles editor in Romanian %q and in English %q", ro, en)
		}
		u.run(chromedp.Evaluate[bool](editor + `.querySelector('input[value="guard"]').click(), ` +
			editor + `.querySelector('button.primary').click(), true`))
		u.waitJS(10*time.Second, "the roles error", `!`+editor+`.querySelector('.error').hidden`)
		if !uiEval[bool](u, editor+`.querySelector('fieldset.roles').getAttribute('aria-invalid') === 'true'`) {
			t.Error("the roles are not marked after saving none")
		}
		u.run(chromedp.Evaluate[bool](editor + `.querySelector('input[value="guard"]').click(), ` +
			editor + `.querySelector('input[value="itc"]').click(), ` +
			editor + `.querySelector('button.primary').click(), true`))
		u.waitJS(10*time.Second, "the roles saved", editor+` === null && `+row+`.querySelectorAll('td.roles .role').length === 2`)
		if got := u.rolesOf("paznic.noapte"); !slices.Equal(got, []string{"guard", "itc"}) {
			t.Errorf("paznic.noapte's roles after the edit: %q, want guard and itc", got)
		}

		// Reset the password: a weak one is refused in place, then a good one.
		u.run(chromedp.Evaluate[bool](row + `.querySelectorAll('.actions button')[1].click(), true`))
		u.waitJS(10*time.Second, "the password editor", editor+`?.dataset.editor === 'password'`)
		u.run(chromedp.Evaluate[bool](editor + `.querySelector('input[type=password]').value = 'scurta', ` +
			editor + `.querySelector('button.primary').click(), true`))
		u.waitJS(10*time.Second, "the password error", `!`+editor+`.querySelector('.error').hidden`)
		if !uiEval[bool](u, editor+`.querySelector('input[type=password]').getAttribute('aria-invalid') === 'true'`) {
			t.Error("the new password field is not marked")
		}
		u.run(chromedp.Evaluate[bool](editor + `.querySelector('input[type=password]').value = 'Noapte-lunga-8', ` +
			editor + `.querySelector('button.primary').click(), true`))
		u.waitJS(10*time.Second, "the password saved", editor+` === null && !document.getElementById('status').hidden`)

		// Disable and enable again from the table.
		u.run(chromedp.Evaluate[bool](row + `.querySelector('.actions button').click(), true`))
		u.waitJS(10*time.Second, "the row disabled", row+`.classList.contains('is-disabled')`)
		u.run(chromedp.Evaluate[bool](row + `.querySelector('.actions button').click(), true`))
		u.waitJS(10*time.Second, "the row enabled", `!`+row+`.classList.contains('is-disabled')`)
	})

	t.Run("itc adds a camera with the probe", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/cameras.html")
		row := func(id string) string {
			return fmt.Sprintf(`document.querySelector('#cameras tbody tr[data-camera=%q]')`, id)
		}
		u.waitJS(10*time.Second, "the demo's cameras", row("bastion-gate")+` !== null`)
		u.langCheck("cameras")
		if got := uiEval[string](u, row("bastion-gate")+`.cells[6].textContent`); got != "fișierul de configurare" {
			t.Errorf("a camera of the file shows source %q", got)
		}

		// A closed port: the probe says the connection was refused.
		closed := testutil.FreeAddr(t, "tcp")
		u.run(chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById('f-url').value = 'rtsp://%s/x',
			document.getElementById('probe').click(), true`, closed)))
		u.waitJS(15*time.Second, "the probe's failure", `document.getElementById('probe-result').dataset.ok === 'false'`)
		if msg := uiEval[string](u, `document.getElementById('probe-result').innerText`); !strings.Contains(msg, "refuzată") {
			t.Errorf("probe of a closed port says %q", msg)
		}

		// The simulator: the probe shows the stream before anything is saved.
		u.run(chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById('f-id').value = 'poarta-noua',
			document.getElementById('f-name').value = 'Poarta nouă',
			document.getElementById('f-site').value = 'bastion',
			document.getElementById('f-url').value = %q,
			document.getElementById('f-transport').value = 'tcp',
			document.getElementById('probe').click(), true`, m.Sim.URL(1))))
		u.waitJS(15*time.Second, "the probe's result", `document.getElementById('probe-result').dataset.ok === 'true'`)
		res := uiEval[string](u, `document.getElementById('probe-result').innerText`)
		for _, want := range []string{"H.264", "640×360", "25", "posibilă"} {
			if !strings.Contains(res, want) {
				t.Errorf("probe result %q lacks %q", res, want)
			}
		}
		u.shot("itc-camera-probe.png")
		u.run(chromedp.Evaluate[bool](`document.getElementById('camera').requestSubmit(), true`))
		u.waitJS(30*time.Second, "the new camera online", row("poarta-noua")+`?.querySelector('.cam-state')?.dataset.state === 'online'`)

		// Edit: the password field is write-only, the rename shows.
		u.run(chromedp.Evaluate[bool](row("poarta-noua") + `.querySelector('.actions button').click(), true`))
		u.waitJS(10*time.Second, "the edit form", `document.getElementById('f-id').disabled && document.getElementById('f-name').value === 'Poarta nouă'`)
		if v := uiEval[string](u, `document.getElementById('f-password').value`); v != "" {
			t.Errorf("the password field holds %q when editing", v)
		}
		u.run(chromedp.Evaluate[bool](`document.getElementById('f-name').value = 'Poarta de est',
			document.getElementById('camera').requestSubmit(), true`))
		u.waitJS(10*time.Second, "the renamed camera", row("poarta-noua")+`.cells[0].textContent.startsWith('Poarta de est')`)

		// Delete, after confirming.
		u.run(chromedp.Evaluate[bool](row("poarta-noua") + `.querySelectorAll('.actions button')[1].click(), true`))
		u.waitJS(10*time.Second, "the confirmation", `document.querySelector('tr.confirm') !== null`)
		u.run(chromedp.Evaluate[bool](`document.querySelector('tr.confirm button.primary').click(), true`))
		u.waitJS(10*time.Second, "the camera gone", row("poarta-noua")+` === null && !document.getElementById('status').hidden`)
	})

	t.Run("itc watches health and alerts", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/health.html")
		row := `document.querySelector('#cameras tbody tr[data-camera="bastion-gate"]')`
		u.waitJS(20*time.Second, "bastion-gate online with its figures", `document.documentElement.dataset.ready === 'true' && `+
			row+`?.dataset.state === 'online' && `+row+`.cells[4].textContent === '50'`)
		if s := uiEval[string](u, `document.getElementById('s-status').dataset.status`); s != "ok" {
			t.Errorf("service status %q, want ok", s)
		}
		u.langCheck("health")
		// The gaps of the last day: none for a camera recording since the start, unless
		// the loaded machine stalled it; then each gap shows its cause.
		u.run(chromedp.Evaluate[bool](row + `.querySelector('.gaps-toggle').click(), true`))
		gapsOf := `document.querySelector('tr.gaps[data-gaps-of="bastion-gate"]')`
		u.waitJS(10*time.Second, "its gaps", gapsOf+`?.querySelector('[data-i18n="health.noGaps"]') != null || `+
			gapsOf+`?.querySelector('tbody tr') != null`)
		if bad := uiEval[int](u, `[...(`+gapsOf+`.querySelectorAll('tbody tr'))].filter(r => !r.dataset.cause || !r.cells[3].textContent.trim()).length`); bad != 0 {
			t.Errorf("%d gaps shown without a cause", bad)
		}
		u.shot("itc-health.png")

		u.navigate("/ui/alerts.html")
		rule := func(id string) string {
			return fmt.Sprintf(`document.querySelector('#rules tbody tr[data-rule=%q]')`, id)
		}
		u.waitJS(10*time.Second, "the demo's rules", `document.documentElement.dataset.ready === 'true' && `+rule("camera-offline")+` !== null`)
		// A share given as a percentage: the API's reason shows at the field.
		u.run(chromedp.Evaluate[bool](`document.getElementById('f-id').value = 'spool-aproape-plin',
			document.getElementById('f-kind').value = 'spool_usage',
			document.getElementById('f-kind').dispatchEvent(new Event('change')),
			document.getElementById('f-threshold').value = '80',
			document.getElementById('rule').requestSubmit(), true`))
		u.waitJS(10*time.Second, "the threshold refused", `document.getElementById('f-threshold').getAttribute('aria-invalid') === 'true'`)
		u.run(chromedp.Evaluate[bool](`document.getElementById('f-threshold').value = '0.8',
			document.getElementById('rule').requestSubmit(), true`))
		u.waitJS(10*time.Second, "the new rule", rule("spool-aproape-plin")+`?.cells[5].textContent === 'această pagină'`)
		u.langCheck("alerts")
		u.shot("itc-alerts.png")
		u.run(chromedp.Evaluate[bool](rule("spool-aproape-plin") + `.querySelector('button').click(), true`))
		u.waitJS(10*time.Second, "the rule deleted", rule("spool-aproape-plin")+` === null && !document.getElementById('status').hidden`)
		if locked := uiEval[bool](u, rule("camera-offline")+`.querySelector("button") === null`); !locked {
			t.Error("a rule of the configuration file can be deleted on the page")
		}
	})

	t.Run("itc previews a retention policy, then saves it", func(t *testing.T) {
		u.t = t
		u.navigate("/ui/retention.html")
		u.waitJS(10*time.Second, "the retention page", `document.documentElement.dataset.ready === 'true' &&
			document.querySelector('#policies tbody tr[data-policy="default"]') !== null`)
		u.langCheck("retention")
		fill := func(age, justification string) {
			u.run(chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById('p-name').value = 'poarta',
				document.getElementById('p-cameras').value = 'bastion-gate',
				document.getElementById('p-max_age').value = %q,
				document.getElementById('p-justification').value = %q,
				document.getElementById('p-name').dispatchEvent(new Event('input')),
				document.getElementById('preview').click(), true`, age, justification)))
		}
		// The API's refusals mark the field they name.
		fill("-1h", "")
		u.waitJS(10*time.Second, "max_age refused", `document.getElementById('p-max_age').getAttribute('aria-invalid') === 'true' &&
			!document.getElementById('editor-error').hidden && document.getElementById('save').disabled`)
		fill("45d", "")
		u.waitJS(10*time.Second, "the justification asked for", `document.getElementById('p-justification').getAttribute('aria-invalid') === 'true'`)
		fill("45d", "Poarta auto: incidente raportate târziu")
		u.waitJS(10*time.Second, "the plan shown, saving allowed", `!document.getElementById('plan-box').hidden &&
			document.querySelector('#plan tbody tr[data-camera="bastion-gate"]') !== null && !document.getElementById('save').disabled`)
		// A change after the preview needs a new one before saving.
		u.run(chromedp.Evaluate[bool](`document.getElementById('p-max_age').value = '40d',
			document.getElementById('p-max_age').dispatchEvent(new Event('input')), true`))
		u.waitJS(5*time.Second, "saving blocked until the new plan is seen", `document.getElementById('save').disabled`)
		u.run(chromedp.Evaluate[bool](`document.getElementById('preview').click(), true`))
		u.waitJS(10*time.Second, "saving allowed again", `!document.getElementById('save').disabled`)
		u.run(chromedp.Evaluate[bool](`document.getElementById('editor').requestSubmit(), true`))
		u.waitJS(10*time.Second, "the policy listed as set here", `document.querySelector('#policies tbody tr[data-policy="poarta"]')?.dataset.source === 'api'`)
		if code, body := uiGet(t, u.base+"/api/v1/cameras/bastion-gate", u.cookie()); code != http.StatusOK ||
			!strings.Contains(body, `"retention_policy":"poarta"`) {
			t.Errorf("GET /api/v1/cameras/bastion-gate: %d %s, want retention_policy poarta", code, body)
		}
		u.run(chromedp.Evaluate[bool](`document.getElementById('run').requestSubmit(), true`))
		u.waitJS(30*time.Second, "a manual run listed", `document.querySelector('#runs tbody tr[data-kind="manual"]') !== null`)
		u.shot("itc-retention.png")
	})

	all := []string{"bastion-courtyard", "bastion-gate", "palat-entrance", "palat-hall"}
	t.Run("layouts fit the window", func(t *testing.T) {
		u.t = t
		// The guard added above, granted both sites: four cameras under two headings.
		u.logout()
		u.fillLogin("paznic.noapte", "Noapte-lunga-8") // the password set on the users page
		u.waitJS(15*time.Second, "the live grid", `location.pathname === '/' && document.querySelectorAll('.tile').length > 0`)
		defer u.viewport(1366, 768)
		for _, size := range [][2]int64{{1366, 768}, {1920, 1080}, {1400, 900}} {
			u.viewport(size[0], size[1])
			for _, n := range []int{1, 4, 9, 16} {
				name := fmt.Sprintf("%dx%d layout %d", size[0], size[1], n)
				u.run(chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector('#layouts button[data-layout="%d"]').click(), true`, n)))
				want := min(n, len(all))
				// Two animation frames: the layout is applied and laid out.
				u.waitJS(5*time.Second, name, fmt.Sprintf(`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() =>
					r(document.querySelectorAll('.tile').length === %d))))`, want))
				fit := uiEval[uiFit](u, `(() => {
					const de = document.documentElement, tiles = [...document.querySelectorAll('.tile')];
					const out = tiles.filter(e => { const r = e.getBoundingClientRect(); return r.bottom > innerHeight || r.right > innerWidth || r.top < 0 })
						.map(e => e.dataset.camera);
					const bottom = Math.max(...tiles.map(e => e.getBoundingClientRect().bottom));
					const main = document.getElementById('grid').getBoundingClientRect();
					const left = Math.min(...tiles.map(e => e.getBoundingClientRect().left));
					return {ScrollH: de.scrollHeight, ClientH: de.clientHeight, ScrollW: de.scrollWidth, ClientW: de.clientWidth,
						Out: out, BottomGap: innerHeight - bottom, SideGap: left - main.left};
				})()`)
				if fit.ScrollH > fit.ClientH || fit.ScrollW > fit.ClientW || len(fit.Out) > 0 {
					t.Errorf("%s: page %vx%v in a %vx%v window; tiles outside it: %q", name, fit.ScrollW, fit.ScrollH, fit.ClientW, fit.ClientH, fit.Out)
					u.shot(fmt.Sprintf("layout-%dx%d-%d-bad.png", size[0], size[1], n))
				}
				// Sized from the window, not just small: either the height or the width is used up.
				if fit.BottomGap > 40 && fit.SideGap > 40 {
					t.Errorf("%s: tiles leave %.0f px below and %.0f px beside them", name, fit.BottomGap, fit.SideGap)
				}
				if n == 4 {
					u.shot(fmt.Sprintf("layout-%dx%d-%d.png", size[0], size[1], n))
				}
			}
		}
		// Layout 1 pages through the cameras, one per page; a camera that leaves the
		// screen ends its live session.
		u.run(chromedp.Evaluate[bool](`document.querySelector('#layouts button[data-layout="1"]').click(), true`))
		var shown []string
		for p := 1; p <= len(all); p++ {
			label := fmt.Sprintf("Pagina %d din %d", p, len(all))
			u.waitJS(10*time.Second, label, `!document.getElementById('pager').hidden && document.getElementById('page-label').textContent === '`+label+`' &&
				document.querySelectorAll('.tile').length === 1 && window.strajaPlayers.size === 1`)
			shown = append(shown, uiEval[string](u, `document.querySelector('.tile').dataset.camera`))
			u.run(chromedp.Evaluate[bool](`document.getElementById('next-page').click(), true`))
		}
		slices.Sort(shown)
		if !slices.Equal(shown, all) {
			t.Errorf("pages of layout 1 showed %q, want each of %q once", shown, all)
		}
		u.run(chromedp.Evaluate[bool](`document.querySelector('#layouts button[data-layout="4"]').click(), true`))
		tiles := uiEval[[]string](u, `[...document.querySelectorAll('.tile')].map(e => e.dataset.camera).sort()`)
		if !slices.Equal(tiles, all) {
			t.Errorf("paznic.noapte's grid shows %q, want %q", tiles, all)
		}
	})

	t.Run("a guard who is also itc gets the pages of both", func(t *testing.T) {
		u.t = t
		u.logout()
		u.fillLogin("paznic.noapte", "Noapte-lunga-8")
		u.waitJS(15*time.Second, "the live page", `location.pathname === '/' && document.documentElement.dataset.ready === 'true'`)
		if links, want := u.navLinks(), []string{"live", "users", "cameras", "health", "alerts", "retention", "playback"}; !slices.Equal(links, want) {
			t.Errorf("guard+itc header links %q, want %q", links, want)
		}
		if who := uiEval[string](u, `document.getElementById('user').innerText`); !strings.Contains(who, "Agent de pază, Personal IT&C") {
			t.Errorf("user menu %q does not name both roles", who)
		}
		// The live grid shows only the cameras granted, though itc lists every camera.
		req, err := http.NewRequest("PUT", u.base+"/api/v1/users/paznic.noapte/grants",
			strings.NewReader(`{"grants":[{"kind":"site","target":"bastion"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", u.cookie())
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("grant only bastion to paznic.noapte (as itc): %d", res.StatusCode)
		}
		u.navigate("/?layout=16")
		u.waitLive(bastion)
		tiles := uiEval[[]string](u, `[...document.querySelectorAll('.tile')].map(t => t.dataset.camera).sort()`)
		if want := slices.Sorted(slices.Values(bastion)); !slices.Equal(tiles, want) {
			t.Errorf("guard+itc live grid %q, want only the granted %q", tiles, want)
		}
		u.navigate("/ui/playback.html")
		if got, want := uiEval[[]string](u, `[...document.getElementById('camera').options].map(o => o.value).sort()`),
			slices.Sorted(slices.Values(bastion)); !slices.Equal(got, want) {
			t.Errorf("guard+itc playback cameras %q, want only the granted %q", got, want)
		}
		u.navigate("/ui/users.html")
		u.waitJS(10*time.Second, "the users page", `document.querySelector('#users tbody tr[data-user="paznic.noapte"]') !== null`)
		u.navigate("/ui/audit.html")
		u.waitJS(10*time.Second, "the audit page refused", `document.getElementById('forbidden') !== null`)
	})

	// Last: it locks this client address out of signing in for a minute. The wait
	// shown can be 1 second when an earlier failure (the wrong password above) is
	// about to leave the window.
	t.Run("too many attempts says to wait", func(t *testing.T) {
		u.t = t
		u.logout()
		for range 6 {
			u.fillLogin("nobody", "Not-the-password-1")
			u.waitJS(10*time.Second, "the error", `!document.getElementById('error').hidden`)
			if uiEval[bool](u, `document.getElementById('error').textContent.startsWith('Prea multe')`) {
				break
			}
		}
		msg := uiEval[string](u, `document.getElementById('error').textContent`)
		if !regexp.MustCompile(`Prea multe încercări\. Așteptați \d+ (de )?secund(e|ă)`).MatchString(msg) {
			t.Errorf("after six failures the page says %q", msg)
		}
		if !uiEval[bool](u, `document.getElementById('submit').disabled`) {
			t.Error("the sign-in button is not held while the lock-out lasts")
		}
		u.shot("login-too-many.png")
	})

	// Every page ran without a script error, a console error (a key missing from a
	// catalogue logs one) or a CSP violation (an inline script or style).
	for _, p := range problems.list() {
		t.Errorf("browser: %s", p)
	}
}

// uiFit is how the live grid sits in the window.
type uiFit struct {
	ScrollH, ClientH, ScrollW, ClientW float64
	Out                                []string // cameras whose tile is not wholly in the window
	BottomGap, SideGap                 float64  // px left below and beside the tiles
}

// grantsOf asks the API, with the browser's cookie, for the grants of a guard
// ("kind:target", sorted).
func (u *uiSession) grantsOf(username string) []string {
	u.t.Helper()
	code, body := uiGet(u.t, u.base+"/api/v1/users", u.cookie())
	var users []struct {
		Username string `json:"username"`
		Role     string `json:"role"`
		Grants   []struct{ Kind, Target string }
	}
	if err := json.Unmarshal([]byte(body), &users); code != http.StatusOK || err != nil {
		u.t.Fatalf("GET /api/v1/users: %d %v %q", code, err, body)
	}
	for _, x := range users {
		if x.Username != username {
			continue
		}
		if x.Role != "guard" {
			u.t.Errorf("%s has role %s, want guard", username, x.Role)
		}
		out := []string{}
		for _, g := range x.Grants {
			out = append(out, g.Kind+":"+g.Target)
		}
		slices.Sort(out)
		return out
	}
	u.t.Fatalf("%s is not among the users: %s", username, body)
	return nil
}

// rolesOf asks the API, with the browser's cookie, for a user's roles.
func (u *uiSession) rolesOf(username string) []string {
	u.t.Helper()
	code, body := uiGet(u.t, u.base+"/api/v1/users", u.cookie())
	var users []struct {
		Username string   `json:"username"`
		Roles    []string `json:"roles"`
	}
	if err := json.Unmarshal([]byte(body), &users); code != http.StatusOK || err != nil {
		u.t.Fatalf("GET /api/v1/users: %d %v %q", code, err, body)
	}
	for _, x := range users {
		if x.Username == username {
			return x.Roles
		}
	}
	u.t.Fatalf("%s is not among the users: %s", username, body)
	return nil
}

// uiSession is one browser on the demo, with the helpers of the UI test.
type uiSession struct {
	t    *testing.T // the running (sub)test
	base string
	ctx  context.Context
	dir  string
}

func (u *uiSession) run(a chromedp.Action[bool]) bool {
	u.t.Helper()
	c, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		u.t.Fatal(err)
	}
	return v
}

func uiEval[T any](u *uiSession, expr string) T {
	u.t.Helper()
	c, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		u.t.Fatalf("%v\nin %s", err, expr)
	}
	return v
}

func (u *uiSession) navigate(path string) {
	u.t.Helper()
	c, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Navigate(u.base+path)); err != nil {
		u.t.Fatal(err)
	}
	// Each page says when it has set itself up (the login page, for a browser sent there).
	u.waitJS(15*time.Second, path+" ready", `document.documentElement.dataset.ready === 'true'`)
}

func (u *uiSession) viewport(w, h int64) {
	u.t.Helper()
	if _, err := chromedp.Run(u.ctx, chromedp.EmulateViewport(w, h)); err != nil {
		u.t.Fatal(err)
	}
}

// waitJS polls a boolean page expression until it holds or d passes.
func (u *uiSession) waitJS(d time.Duration, what, expr string) {
	u.t.Helper()
	deadline := time.Now().Add(d)
	for !uiEval[bool](u, `(async () => { try { return !!(await (`+expr+`)) } catch { return false } })()`) {
		if time.Now().After(deadline) {
			u.t.Fatalf("%s: not seen within %v; page %s says %q", what, d, uiEval[string](u, `location.href`),
				uiEval[string](u, `document.body ? document.body.innerText : ''`))
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not a wait for an event
	}
}

func (u *uiSession) waitLive(ids []string) {
	u.t.Helper()
	for _, id := range ids {
		u.waitJS(30*time.Second, id+" live", fmt.Sprintf(`document.querySelector('.tile[data-camera=%q]')?.dataset.state === 'live'`, id))
	}
}

// fillLogin signs in through the login page's form (the browser must be on it).
func (u *uiSession) fillLogin(user, password string) {
	u.t.Helper()
	u.waitJS(10*time.Second, "the login form", `location.pathname === '/ui/login.html' && document.documentElement.dataset.ready === 'true' &&
		!document.getElementById('submit').disabled`)
	u.run(chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById('username').value = %q,
		document.getElementById('password').value = %q,
		document.getElementById('login').requestSubmit(), true`, user, password)))
}

func (u *uiSession) logout() {
	u.t.Helper()
	u.waitJS(10*time.Second, "the sign-out button", `document.getElementById('user') && !document.getElementById('user').hidden`)
	u.run(chromedp.Evaluate[bool](`document.getElementById('logout').click(), true`))
	u.waitJS(10*time.Second, "the login page", `location.pathname === '/ui/login.html'`)
}

func (u *uiSession) navLinks() []string {
	u.t.Helper()
	return uiEval[[]string](u, `[...document.querySelectorAll('#nav a')].map(a => a.dataset.page)`)
}

// cookie is the session cookie the browser holds, as a Cookie header value.
func (u *uiSession) cookie() string {
	u.t.Helper()
	res, err := chromedp.Run(u.ctx, chromedp.Action[network.GetCookiesResult](func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{u.base}})
	}))
	if err != nil {
		u.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "straja_session" {
			if !c.HTTPOnly {
				u.t.Error("the session cookie is readable by scripts (not HttpOnly)")
			}
			return c.Name + "=" + c.Value
		}
	}
	u.t.Fatal("no session cookie in the browser")
	return ""
}

func (u *uiSession) shot(name string) {
	u.t.Helper()
	png, err := chromedp.Run(u.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		u.t.Fatal(err)
	}
	p := filepath.Join(u.dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.t.Logf("screenshot: %s", p)
}

// uiText is one visible text of a page: where it is, and what it says.
type uiText struct {
	Path string `json:"path"`
	Text string `json:"text"`
}

// visibleTextsJS lists the visible texts of the page: text nodes, the title,
// placeholder and aria-label attributes, the options of visible lists, and the
// document title. Data (names, times, audit details) is marked translate="no" and
// left out.
const visibleTextsJS = `(() => {
	const path = (el) => {
		const parts = [];
		for (; el && el !== document.body; el = el.parentElement) {
			parts.unshift(el.tagName.toLowerCase() + (el.id ? '#' + el.id : ':' + [...el.parentElement.children].indexOf(el)));
		}
		return parts.join('>');
	};
	const skip = (el) => el.closest('[translate="no"]');
	const shown = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
	const out = [{path: 'document.title', text: document.title}];
	const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n; (n = w.nextNode());) {
		const el = n.parentElement, text = n.nodeValue.trim();
		if (!text || skip(el) || el.closest('option') || !shown(el)) continue;
		out.push({path: path(el) + '/' + [...el.childNodes].indexOf(n), text});
	}
	for (const el of document.body.querySelectorAll('[title], [placeholder], [aria-label]')) {
		if (skip(el) || !shown(el)) continue;
		for (const a of ['title', 'placeholder', 'aria-label']) {
			const v = (el.getAttribute(a) || '').trim();
			if (v) out.push({path: path(el) + '@' + a, text: v});
		}
	}
	for (const sel of document.body.querySelectorAll('select')) {
		if (!shown(sel)) continue;
		for (const o of sel.options) if (!skip(o)) out.push({path: path(o), text: o.textContent.trim()});
	}
	return out;
})()`

// uiSameInBothLanguages are texts that rightly read the same in Romanian and English.
var uiSameInBothLanguages = map[string]bool{
	"Straja":        true, // the product's name
	"Administrator": true, // the role, the same word in both languages
}

// uiNotWords matches texts without words: numbers, times, arrows.
var uiNotWords = regexp.MustCompile(`^[\d\s:.,/\-–—‹›()%+·●]*$`)

// langCheck switches the page from Romanian to English and back, and fails on a text
// that did not change (a string not taken from the catalogues), on a text shown in
// only one language, and on a key missing from the active catalogue (⟦key⟧).
func (u *uiSession) langCheck(name string) {
	u.t.Helper()
	u.waitJS(10*time.Second, "Romanian", `document.documentElement.dataset.ready === 'true' && document.documentElement.lang === 'ro' &&
		document.getElementById('lang').textContent === 'English'`)
	ro := uiEval[[]uiText](u, visibleTextsJS)
	u.shot(name + "-ro.png")
	u.run(chromedp.Evaluate[bool](`document.getElementById('lang').click(), true`))
	u.waitJS(10*time.Second, "English", `document.documentElement.lang === 'en' && document.getElementById('lang').textContent === 'Română'`)
	en := uiEval[[]uiText](u, visibleTextsJS)
	u.shot(name + "-en.png")
	// The choice is kept: a reload stays in English.
	if _, err := chromedp.Run(u.ctx, chromedp.Reload()); err != nil {
		u.t.Fatal(err)
	}
	u.waitJS(10*time.Second, "English after a reload", `document.documentElement.dataset.ready === 'true' && document.documentElement.lang === 'en'`)
	u.run(chromedp.Evaluate[bool](`document.getElementById('lang').click(), true`))
	u.waitJS(10*time.Second, "Romanian again", `document.documentElement.lang === 'ro' && document.getElementById('lang').textContent === 'English'`)

	enAt := map[string]string{}
	for _, x := range en {
		enAt[x.Path] = x.Text
	}
	roAt := map[string]string{}
	for _, x := range ro {
		roAt[x.Path] = x.Text
		e, ok := enAt[x.Path]
		switch {
		case strings.Contains(x.Text, "⟦") || strings.Contains(e, "⟦"):
			u.t.Errorf("%s: %s: a key missing from a catalogue: ro %q, en %q", name, x.Path, x.Text, e)
		case !ok:
			u.t.Errorf("%s: %s: %q shown in Romanian only", name, x.Path, x.Text)
		case e == x.Text && !uiSameInBothLanguages[x.Text] && !uiNotWords.MatchString(x.Text):
			u.t.Errorf("%s: %s: %q is the same in both languages (not from a catalogue?)", name, x.Path, x.Text)
		}
	}
	for _, x := range en {
		if _, ok := roAt[x.Path]; !ok {
			u.t.Errorf("%s: %s: %q shown in English only", name, x.Path, x.Text)
		}
	}
	u.t.Logf("%s: %d visible texts compared", name, len(ro))
	if len(ro) < 5 {
		u.t.Errorf("%s: only %d visible texts; the page did not render?", name, len(ro))
	}
}

// uiProblems collects what went wrong in the pages: uncaught exceptions, console
// errors and the browser's own errors except failed requests (401, 403 and 429 are
// expected answers).
type uiProblems struct {
	mu sync.Mutex
	l  []string
}

// listen is a chromedp listener; it only appends, as listeners must return fast.
func (p *uiProblems) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		msg = "console.error:"
		for _, a := range ev.Args {
			msg += " " + string(a.Value) + a.Description
		}
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Level != cdplog.EntryLevelError || e.Source == cdplog.EntrySourceNetwork {
			return
		}
		msg = fmt.Sprintf("%s: %s (%s)", e.Source, e.Text, e.URL)
	default:
		return
	}
	p.mu.Lock()
	p.l = append(p.l, msg)
	p.mu.Unlock()
}

func (p *uiProblems) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.l)
}

// newUIBrowser starts headless Chromium (testutil.Browser) at 1366x768; listen gets
// the page's events.
func newUIBrowser(t *testing.T, listen func(ev any)) context.Context {
	t.Helper()
	return testutil.Browser(t, listen, chromedp.WindowSize(1366, 768))
}

// uiArtifacts is where screenshots are kept: $STRAJA_TEST_ARTIFACTS, or a folder
// under the system's temp directory that outlives the test.
func uiArtifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STRAJA_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "straja-artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// uiGet is a GET with a Cookie header: status and body.
func uiGet(t *testing.T, url, cookie string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bucharestLoc(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Bucharest")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
