package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Certificate files `straja cert` writes into --out-dir.
const (
	certFileName = "straja-cert.pem"
	keyFileName  = "straja-key.pem"
)

// maxCertDays is the longest validity browsers accept for a TLS server certificate
// (Apple's platforms refuse longer ones even when trusted by hand).
const maxCertDays = 825

var dnsName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// certCommand writes a self-signed certificate and key for a LAN without a CA.
func certCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hostsFlag := fs.String("hosts", "", "comma-separated names and IP addresses browsers use to reach Straja")
	outDir := fs.String("out-dir", ".", "directory for "+certFileName+" and "+keyFileName)
	days := fs.Int("days", 365, fmt.Sprintf("validity in days (1-%d)", maxCertDays))
	force := fs.Bool("force", false, "overwrite existing files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cert: unexpected argument %q", fs.Arg(0))
	}
	dns, ips, err := parseCertHosts(*hostsFlag)
	if err != nil {
		return fmt.Errorf("cert: --hosts: %w", err)
	}
	if *days < 1 || *days > maxCertDays {
		return fmt.Errorf("cert: --days must be 1..%d (browsers refuse longer-lived certificates), got %d", maxCertDays, *days)
	}
	dir, err := filepath.Abs(*outDir)
	if err != nil {
		return fmt.Errorf("cert: --out-dir: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, certFileName), filepath.Join(dir, keyFileName)
	if !*force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("cert: %s exists; use --force to replace it", p)
			}
		}
	}
	certPEM, keyPEM, der, err := selfSigned(dns, ips, time.Now(), time.Duration(*days)*24*time.Hour)
	if err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	// The key first: a certificate without its key is of no use.
	if err := writeNew(keyPath, keyPEM, 0o600, *force); err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	if err := writeNew(certPath, certPEM, 0o644, *force); err != nil {
		return fmt.Errorf("cert: %w", err)
	}

	hosts, quoted := slices.Clone(dns), make([]string, 0, len(dns)+len(ips))
	for _, ip := range ips {
		hosts = append(hosts, ip.String())
	}
	for _, h := range hosts {
		quoted = append(quoted, strconv.Quote(h))
	}
	sum := sha256.Sum256(der)
	fp := make([]string, len(sum))
	for i, b := range sum {
		fp[i] = fmt.Sprintf("%02X", b)
	}
	fmt.Fprintf(stdout, `Wrote a self-signed certificate for %s, valid %d days:
  certificate: %s
  private key: %s (keep it secret; readable by its owner only)
SHA-256 fingerprint: %s
Compare it with what a browser shows before trusting the certificate on each computer
(import %s as a trusted certificate, or accept it once per browser).

Add to the configuration (listen on the address browsers reach, such as 0.0.0.0:8443):
tls:
  cert_file: %q
  key_file: %q
public_hosts: [%s]
`, strings.Join(hosts, ", "), *days, certPath, keyPath, strings.Join(fp, ":"), certFileName,
		certPath, keyPath, strings.Join(quoted, ", "))
	return nil
}

// parseCertHosts splits --hosts into DNS names and IP addresses, naming the first
// entry that is neither.
func parseCertHosts(s string) (dns []string, ips []net.IP, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, errors.New("is required: the names and IP addresses browsers use, e.g. straja.cj.local,10.20.0.5")
	}
	seen := map[string]bool{}
	for h := range strings.SplitSeq(s, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if seen[h] {
			continue
		}
		seen[h] = true
		if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
			if ip.Zone() != "" {
				return nil, nil, fmt.Errorf("%q: an IP address with a zone cannot be in a certificate", h)
			}
			ips = append(ips, net.IP(ip.AsSlice()))
			continue
		}
		if h == "" || len(h) > 253 || !dnsName.MatchString(h) {
			return nil, nil, fmt.Errorf("%q is not a host name or IP address (no scheme or port, e.g. straja.cj.local or 10.20.0.5)", h)
		}
		dns = append(dns, h)
	}
	return dns, ips, nil
}

// selfSigned makes an ECDSA P-256 certificate for a TLS server, which every browser
// accepts, signed by its own key. It returns the PEM certificate, the PEM (PKCS #8)
// key and the certificate's DER bytes.
func selfSigned(dns []string, ips []net.IP, now time.Time, valid time.Duration) (certPEM, keyPEM, der []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("serial number: %w", err)
	}
	cn := ""
	if len(dns) > 0 {
		cn = dns[0]
	} else if len(ips) > 0 {
		cn = ips[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Straja"}},
		// An hour back, for clocks of other computers that run a little behind.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), der, nil
}

// writeNew writes data to path with mode perm through a temporary file, so that a
// reader never sees half a file and a replaced key never has looser permissions.
// Without replace, an existing path is an error and is left alone.
func writeNew(path string, data []byte, perm os.FileMode, replace bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".straja-cert-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if replace {
		return os.Rename(tmp, path)
	}
	// A hard link fails if path exists, where a rename would replace it.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; use --force to replace it", path)
		}
		return err
	}
	return nil
}
