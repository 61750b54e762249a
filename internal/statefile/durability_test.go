package statefile

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The durability test re-executes this test binary as a writer process (the
// real thing it models is upstreamd persisting API changes), so TestMain
// diverts to the writer when these variables are set.
const (
	envWriterPath    = "STATEFILE_TEST_WRITER_PATH"
	envWriterChanges = "STATEFILE_TEST_WRITER_CHANGES"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envWriterPath); path != "" {
		n, _ := strconv.Atoi(os.Getenv(envWriterChanges))
		os.Exit(runWriter(path, n))
	}
	os.Exit(m.Run())
}

// runWriter behaves like a restarted server: it loads the state file, checks
// that it is one of the states ever written, then applies n more changes,
// printing "ack K" only after Write for change K has returned — the moment
// the API would answer success.
func runWriter(path string, n int) int {
	servers, err := Read(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "restart: Read:", err)
		return 3
	}
	k := 0
	if len(servers) > 0 {
		k = servers[0].Weight
		if want := Format(stateFor(k)); !bytes.Equal(Format(servers), want) {
			fmt.Fprintf(os.Stderr, "restart: state is not change %d:\n%s", k, Format(servers))
			return 4
		}
	}
	for end := k + n; k < end; {
		k++
		if err := Write(path, stateFor(k)); err != nil {
			fmt.Fprintln(os.Stderr, "Write:", err)
			return 5
		}
		// os.Stdout is unbuffered: the line is in the pipe when this returns.
		fmt.Printf("ack %d\n", k)
	}
	return 0
}

// stateFor returns the server list after change k. The first server's
// weight is k, so a file identifies the change it holds; the list length
// and parameters vary with k so that a torn or mixed file cannot pass for
// a valid state.
func stateFor(k int) []Server {
	servers := make([]Server, 1+k%23)
	for i := range servers {
		s := Default(fmt.Sprintf("10.%d.%d.%d:%d", k%250, i, (k*7+i)%250, 1024+(k+i)%60000))
		s.Weight = 1 + (k+i)%9
		s.MaxFails = (k * i) % 4
		s.MaxConns = (k + 3*i) % 5
		s.FailTimeout = time.Duration((k+i)%30) * time.Second
		s.SlowStart = time.Duration((k*i)%90) * time.Second
		s.Backup = (k+i)%5 == 0
		s.Down = (k+i)%7 == 0
		s.Drain = (k+i)%11 == 0
		servers[i] = s
	}
	servers[0].Weight = k
	return servers
}

// TestKillDuringWrites: a process killed with SIGKILL at any moment restarts
// with every acknowledged change and a readable file. Each round starts a
// writer that continues from the file, kills it at a random moment after
// some acks, and checks the file holds the last acknowledged change or the
// one after it (written but killed before acking) — never older, never
// torn. The next round's writer then restarts from that file.
func TestKillDuringWrites(t *testing.T) {
	const rounds = 20
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	path := t.TempDir() + "/state/backend.conf"
	started := time.Now()
	unacked := 0 // rounds killed after a rename but before its ack

	for round := range rounds {
		lastAck := killWriterAfter(t, path, 1+rng.IntN(25), time.Duration(rng.IntN(2000))*time.Microsecond)

		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got, err := Read(path)
		if err != nil {
			t.Fatalf("round %d: Read after kill: %v\nfile:\n%s", round, err, data)
		}
		if len(got) == 0 {
			t.Fatalf("round %d: empty state after ack %d", round, lastAck)
		}
		k := got[0].Weight
		if k != lastAck && k != lastAck+1 {
			t.Fatalf("round %d: file holds change %d, last ack was %d", round, k, lastAck)
		}
		if want := Format(stateFor(k)); !bytes.Equal(data, want) {
			t.Fatalf("round %d: file is not exactly change %d:\n%s\nwant\n%s", round, k, data, want)
		}
		if k > lastAck {
			unacked++
		}
	}
	t.Logf("%d rounds in %v, %d killed between rename and ack", rounds, time.Since(started).Round(time.Millisecond), unacked)
}

// killWriterAfter runs a writer on path, SIGKILLs it delay after its
// acks-th ack, and returns the highest change it acknowledged (including
// acks still in the pipe when it died).
func killWriterAfter(t *testing.T, path string, acks int, delay time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envWriterPath+"="+path, envWriterChanges+"=1000000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A hung writer must not hang the test.
	watchdog := time.AfterFunc(5*time.Second, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	lastAck, seen := 0, 0
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack "))
		if err != nil {
			t.Fatalf("writer printed %q", sc.Text())
		}
		if k <= lastAck {
			t.Fatalf("ack %d after ack %d", k, lastAck)
		}
		lastAck = k
		seen++
		if seen == acks && !killed {
			time.Sleep(delay) // land somewhere inside a later Write
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("writer ended after %d acks before being killed: %v\n%s", seen, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Fatalf("writer stderr: %s", stderr.String())
	}
	return lastAck
}
