package upstream

import (
	"fmt"
	"net"
	"testing"
)

// Golden data captured from nginx 1.22.1 (Debian nginx-light, one worker)
// proxying to five local servers that answer with their own address. Each
// digit is the last digit of the chosen server's port (1 = first server).
//
//	upstream wrr    { server 127.0.0.1:9001 weight=5; server 127.0.0.2:9002; server 127.0.0.3:9003; }
//	upstream chash  { hash $arg_k consistent; server 127.0.0.1:9001; server 127.0.0.2:9002 weight=2;
//	                  server 127.0.0.3:9003; server localhost:9004 weight=3; server 127.0.0.5:9005; }
//	upstream chashd { same as chash, 127.0.0.2:9002 down }
//	upstream hash   { hash $arg_k; same servers as chash }
//	upstream hashd  { same as hash, 127.0.0.2:9002 and localhost:9004 down }
//	upstream iph    { ip_hash; same servers as chash }
//	upstream iphd   { same as iph, 127.0.0.2:9002 down }
//
// Keys are k0..k299 (?k=KEY); ip_hash clients are goldenIP(0..299) passed
// through the realip module (X-Real-IP). The wrr sequence starts after one
// earlier request.
var nginxGolden = map[string]string{
	"wrr": "12131111213111",
	"chash": "5224244253421241223114542453554543445414232421321234342112425444211154333242243321112441154224422315" +
		"5432152223434434522442325554414352341342255254444354442342422244442142114434114412245514142223543444" +
		"2411244212322233352423322424242441344441423212311524343145544354154452112242544424344324344424343144",
	"chashd": "5334344153441441443114544453554543445414434431311534345111455444111154333444443331111441154444454315" +
		"5431154143434434534443335554414353341345455454444354445344415444445144114434114415445514144133543444" +
		"4411544313345133354433314444445441344441433111311544343145544354154455114444544444344344344414343144",
	"hash": "2451432424512424434324435124242451432424154242343434424215154215344242423415424242341542424215344242" +
		"4234154242421534424234424215151542423434245143242424435124245124244343432424515143242451515124244343" +
		"3442421515154242343442341542424215344242512424434343242451512451432424244351242424435124242451432424",
	"hashd": "5351333333511351131351135113131351135151153115313131153115153115311515153115313115311531313115311515" +
		"5535155555551535555535555515151555553535555153555555535155555155555353535555515153555551515155555353" +
		"3555551515155555353555351555555515355555515555535353555551515551535555555351555555535155555551535555",
	"iph": "3454414122231222323224432544151452512121234244343154414525221252412422434534441352415523214242143442" +
		"4145441414523144234342444454434125131214423414434445442452542124431244443434414425243252343424234242" +
		"4414224124252322423534543145451412423124242342443254522145232212323421444315441252524125222342443453",
	"iphd": "3454414144431344313454434544151451514141434444343154414535431455413444434534441354415533414544143445" +
		"4145441414543144534344444454434155131314433414434445444451545144431344443434414445443455343444434444" +
		"4414444144354345453534543145451414443134443344443354533145135514333411444315441454544115544343443453",
}

func goldenIP(i int) net.IP {
	if i%5 == 4 {
		return net.ParseIP(fmt.Sprintf("2001:db8:%x::%x", i*7919%65536, i))
	}
	return net.IPv4(byte((i*37+11)%224+1), byte(i*91%256), byte(i*13%256), byte(i%256))
}

// goldenServers are the servers of the golden upstreams; down marks the
// indexes that are down.
func goldenServers(down ...int) []ServerSpec {
	specs := []ServerSpec{
		{Name: "127.0.0.1:9001", Addr: "127.0.0.1:9001", Weight: 1},
		{Name: "127.0.0.2:9002", Addr: "127.0.0.2:9002", Weight: 2},
		{Name: "127.0.0.3:9003", Addr: "127.0.0.3:9003", Weight: 1},
		{Name: "localhost:9004", Addr: "127.0.0.1:9004", Weight: 3},
		{Name: "127.0.0.5:9005", Addr: "127.0.0.5:9005", Weight: 1},
	}
	for i := range specs {
		specs[i].MaxFails, specs[i].FailTimeout = 1, 10e9
	}
	for _, d := range down {
		specs[d].Down = true
	}
	return specs
}

func goldenDigit(p *Peer) byte { a := p.Addr(); return a[len(a)-1] }

func TestNginxGolden(t *testing.T) {
	t.Run("wrr", func(t *testing.T) {
		u := mustNew(t, Options{}, srv("127.0.0.1:9001", weight(5)), srv("127.0.0.2:9002"), srv("127.0.0.3:9003"))
		pickOK(t, u, Request{})
		got := make([]byte, 0, len(nginxGolden["wrr"]))
		for range len(nginxGolden["wrr"]) {
			a := u.Begin(Request{})
			p, _ := a.Next()
			a.Finish(p, false)
			got = append(got, goldenDigit(p))
		}
		if string(got) != nginxGolden["wrr"] {
			t.Fatalf("got  %s\nwant %s", got, nginxGolden["wrr"])
		}
	})
	tests := []struct {
		name string
		opts Options
		down []int
		req  func(i int) Request
	}{
		{"chash", Options{Method: Hash, HashConsistent: true}, nil, keyReq},
		{"chashd", Options{Method: Hash, HashConsistent: true}, []int{1}, keyReq},
		{"hash", Options{Method: Hash}, nil, keyReq},
		{"hashd", Options{Method: Hash}, []int{1, 3}, keyReq},
		{"iph", Options{Method: IPHash}, nil, ipReq},
		{"iphd", Options{Method: IPHash}, []int{1}, ipReq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := mustNew(t, tt.opts, goldenServers(tt.down...)...)
			want := nginxGolden[tt.name]
			for i := range len(want) {
				a := u.Begin(tt.req(i))
				p, err := a.Next()
				if err != nil {
					t.Fatal(err)
				}
				a.Finish(p, false)
				if d := goldenDigit(p); d != want[i] {
					t.Fatalf("request %d (%+v): got server %c, nginx chose %c", i, tt.req(i), d, want[i])
				}
			}
		})
	}
}

func keyReq(i int) Request { return Request{HashKey: fmt.Sprintf("k%d", i)} }
func ipReq(i int) Request  { return Request{ClientIP: goldenIP(i)} }

// TestNginxRetryScenario mirrors what nginx 1.22.1 logged for
//
//	upstream rt { server A; server B down; server C; server Z backup; }
//
// with A, C and Z refusing connections: one request tries A, C, Z (3 tries:
// down peers are not counted), each failure logs "upstream server
// temporarily disabled", and the next request gets "no live upstreams".
func TestNginxRetryScenario(t *testing.T) {
	log := &testLog{}
	u := mustNew(t, Options{Now: newClock().Now, Log: log.Log}, srv("A"), srv("B", down), srv("C"), srv("Z", backup))
	a := u.Begin(Request{})
	if a.Tries() != 3 {
		t.Fatalf("Tries = %d", a.Tries())
	}
	var got []string
	for range a.Tries() {
		p, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Name())
		a.Finish(p, true)
	}
	if fmt.Sprint(got) != "[A C Z]" {
		t.Fatalf("tried %v", got)
	}
	if want := "warn: upstream server temporarily disabled"; log.String() != want+"\n"+want+"\n"+want {
		t.Fatalf("log %q", log)
	}
	if _, err := u.Begin(Request{}).Next(); err != ErrNoLiveUpstreams {
		t.Fatalf("next request: %v", err)
	}
}
