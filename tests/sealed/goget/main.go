// goget — the Go client of the sealed-mode tests (tests/sealed/build.sh).
//
// Built with CGO_ENABLED=0: a static binary whose resolver is Go's own (it
// reads /etc/hosts and sends DNS to resolv.conf's nameserver itself) and
// whose connects are raw syscalls on non-blocking sockets, so the preload
// sees none of it.  Sealed mode must proxy it.
//
//	goget [-n N] [-t] URL                  HTTP GET, body on stdout
//	goget [-n N] [-t] -tcp HOST:PORT -send TEXT
//	                                       dial, write TEXT (\r \n \t \\ are
//	                                       unescaped), half-close, print what
//	                                       comes back until EOF
//
// -n N: N sequential connections (keep-alive off, so each is a new one);
// the output is that of the last.  -t: the latency summary line on stderr:
//
//	lat n=N median_us=M p10_us=A p90_us=B total_s=T conn_per_s=R
//
// Errors: "ERR <errno name> <strerror>" on stderr, exit 2 (a failed look-up
// is ERR EAI_NONAME / EAI_AGAIN / EAI_FAIL; an error without an errno is
// ERR EIO and Go's message); usage errors exit 64.  Proxy variables of the
// environment are ignored: only the address given is contacted.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
)

const timeout = 30 * time.Second

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.EACCES: "EACCES", syscall.ENOSYS: "ENOSYS",
	syscall.ECONNREFUSED: "ECONNREFUSED", syscall.ECONNRESET: "ECONNRESET",
	syscall.ECONNABORTED: "ECONNABORTED", syscall.ENETUNREACH: "ENETUNREACH",
	syscall.EHOSTUNREACH: "EHOSTUNREACH", syscall.ETIMEDOUT: "ETIMEDOUT",
	syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL", syscall.EAFNOSUPPORT: "EAFNOSUPPORT",
	syscall.EINVAL: "EINVAL", syscall.EINTR: "EINTR", syscall.EPIPE: "EPIPE",
	syscall.EBADF: "EBADF", syscall.EIO: "EIO", syscall.EPROTO: "EPROTO",
	syscall.EINPROGRESS: "EINPROGRESS", syscall.EALREADY: "EALREADY",
	syscall.ENOTCONN: "ENOTCONN", syscall.EMFILE: "EMFILE",
}

// fail prints the ERR line for err and exits 2.
func fail(err error) {
	var errno syscall.Errno
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &errno):
		name, ok := errnoNames[errno]
		if !ok {
			name = fmt.Sprintf("E%d", int(errno))
		}
		// glibc's strerror text: Go's table is the same, lower-cased.
		msg := errno.Error()
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		fmt.Fprintf(os.Stderr, "ERR %s %s\n", name, msg)
	case errors.As(err, &dnsErr):
		name := "EAI_FAIL"
		if dnsErr.IsNotFound {
			name = "EAI_NONAME"
		} else if dnsErr.IsTimeout || dnsErr.IsTemporary {
			name = "EAI_AGAIN"
		}
		fmt.Fprintf(os.Stderr, "ERR %s %s\n", name, dnsErr.Error())
	case errors.Is(err, os.ErrDeadlineExceeded):
		fmt.Fprintf(os.Stderr, "ERR ETIMEDOUT %s\n", err)
	default:
		fmt.Fprintf(os.Stderr, "ERR EIO %s\n", err)
	}
	os.Exit(2)
}

func usage(msg string) {
	if msg != "" {
		fmt.Fprintln(os.Stderr, "goget:", msg)
	}
	fmt.Fprintln(os.Stderr, "usage: goget [-n N] [-t] URL | goget [-n N] [-t] -tcp HOST:PORT -send TEXT")
	os.Exit(64)
}

// getOnce does one GET on a new connection; the body goes to out.
func getOnce(client *http.Client, url string, out io.Writer) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}

// tcpOnce dials addr, sends text, half-closes and copies the answer to out.
func tcpOnce(addr, text string, out io.Writer) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, text); err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return err
		}
	}
	_, err = io.Copy(out, c)
	return err
}

func summary(lat []float64, total time.Duration) {
	sort.Float64s(lat)
	n := len(lat)
	secs := total.Seconds()
	fmt.Fprintf(os.Stderr, "lat n=%d median_us=%.1f p10_us=%.1f p90_us=%.1f total_s=%.3f conn_per_s=%.1f\n",
		n, lat[n/2], lat[n/10], lat[n*9/10], secs, float64(n)/secs)
}

func main() {
	n := flag.Int("n", 1, "sequential connections")
	timing := flag.Bool("t", false, "latency summary on stderr")
	tcp := flag.String("tcp", "", "HOST:PORT to dial")
	send := flag.String("send", "", "text to send with -tcp")
	flag.Usage = func() { usage("") }
	flag.Parse()
	if *n < 1 {
		usage("-n must be at least 1")
	}
	var once func(io.Writer) error
	switch {
	case *tcp != "" && flag.NArg() == 0:
		text := strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\t`, "\t", `\\`, `\`).Replace(*send)
		once = func(w io.Writer) error { return tcpOnce(*tcp, text, w) }
	case *tcp == "" && flag.NArg() == 1:
		url := flag.Arg(0)
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{
			Proxy: nil, DisableKeepAlives: true,
			DialContext: (&net.Dialer{Timeout: timeout}).DialContext,
		}}
		once = func(w io.Writer) error { return getOnce(client, url, w) }
	default:
		usage("give a URL, or -tcp HOST:PORT -send TEXT")
	}
	lat := make([]float64, 0, *n)
	start := time.Now()
	for i := 0; i < *n; i++ {
		out := io.Discard
		if i == *n-1 {
			out = os.Stdout
		}
		t := time.Now()
		if err := once(out); err != nil {
			fail(err)
		}
		lat = append(lat, float64(time.Since(t).Nanoseconds())/1e3)
	}
	if *timing {
		summary(lat, time.Since(start))
	}
}
