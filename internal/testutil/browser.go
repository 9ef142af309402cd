package testutil

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts headless Chromium with a fresh profile and the flags this machine
// needs (no background networking, which its closed network refuses), able to do
// WebRTC over loopback; extra options (window size, environment, host rules) are
// added after them. listen, when not nil, gets the page's events. The browser lives
// until the test ends.
func Browser(tb testing.TB, listen func(ev any), extra ...chromedp.ExecAllocatorOption) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		// Replaces chromedp's default value, so repeat it.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var copts []chromedp.ContextOption
	if listen != nil {
		copts = append(copts, chromedp.WithListener(listen))
	}
	bctx, cancelBrowser := chromedp.NewContext(actx, copts...)
	tb.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first Run starts the browser; it lives as long as bctx.
	if _, err := chromedp.Run(bctx, chromedp.Navigate("about:blank")); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	return bctx
}
