package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/straja-nvr/straja/internal/testutil"
)

// TestVideoInChromium plays video.mp4 of a 3-segment range in a <video>, seeks to
// the middle and sees playback go on from there; and draws still.mp4 to a canvas.
func TestVideoInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	testutil.NeedChromium(t)
	p0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	s := newPlaybackServer(t, p0)
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx := testutil.Browser(t, nil)
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: sessionCookie, Value: testSession("admin"), URL: ts.URL})
		return err
	}), chromedp.Navigate(ts.URL+"/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	from, to := p0.Add(time.Second), p0.Add(17*time.Second)
	type result struct {
		Duration, Seeked, Later float64
		Error                   string
	}
	r, err := chromedp.Run(ctx, chromedp.Evaluate[result](fmt.Sprintf(`(async () => {
		const v = document.createElement('video');
		v.muted = true;
		document.body.append(v);
		const failed = new Promise((_, rej) => v.addEventListener('error', () => rej(new Error('media error ' + v.error.code + ' ' + v.error.message))));
		const when = (ev) => Promise.race([new Promise((res) => v.addEventListener(ev, res, { once: true })), failed]);
		const poll = async (cond, ms) => { const end = Date.now() + ms; while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50)); };
		try {
			v.src = %q;
			await when('loadeddata');
			await v.play();
			const duration = v.duration;
			v.currentTime = duration / 2;
			await when('seeked');
			const seeked = v.currentTime;
			await poll(() => v.currentTime > seeked + 0.3, 5000);
			return { Duration: duration, Seeked: seeked, Later: v.currentTime, Error: v.error ? String(v.error.code) : '' };
		} catch (e) {
			return { Error: String(e) };
		}
	})()`, videoURL(from, to)), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("video: %+v", r)
	want := to.Sub(from).Seconds()
	switch {
	case r.Error != "":
		t.Fatalf("media error: %s", r.Error)
	case r.Duration < want-0.05 || r.Duration > want+0.05:
		t.Errorf("duration %.3f s, want %.3f s", r.Duration, want)
	case r.Seeked < want/2-0.1 || r.Seeked > want/2+0.1:
		t.Errorf("seeked to %.3f s, want the middle %.3f s", r.Seeked, want/2)
	case r.Later <= r.Seeked+0.3:
		t.Errorf("after the seek playback stayed at %.3f s (seeked to %.3f s)", r.Later, r.Seeked)
	}

	type still struct {
		Lit, Total int
		Error      string
	}
	// As the page does it: a picture is there to draw once the video has seeked to it.
	st, err := chromedp.Run(ctx, chromedp.Evaluate[still](fmt.Sprintf(`(async () => {
		const v = document.createElement('video');
		v.muted = true;
		try {
			await new Promise((res, rej) => { v.onloadeddata = res; v.onerror = () => rej(new Error('media error ' + v.error.code)); v.src = %q; });
			v.currentTime = 0;
			await new Promise((r) => v.addEventListener('seeked', r, { once: true }));
			const c = document.createElement('canvas');
			c.width = 160; c.height = 90;
			const g = c.getContext('2d');
			g.drawImage(v, 0, 0, c.width, c.height);
			const px = g.getImageData(0, 0, c.width, c.height).data;
			let lit = 0;
			for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 60) lit++;
			return { Lit: lit, Total: px.length / 4, Error: '' };
		} catch (e) {
			return { Error: String(e) };
		}
	})()`, "/api/v1/cameras/bastion-gate/still.mp4?at="+p0.Add(5*time.Second).Format(time.RFC3339)), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if st.Error != "" || st.Lit < st.Total/4 {
		t.Errorf("still drawn to a canvas: %d of %d pixels lit, error %q", st.Lit, st.Total, st.Error)
	}
}
