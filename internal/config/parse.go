package config

import (
	"errors"
	"math"
	"time"
)

var errInvalid = errors.New("invalid value")

// ParseDuration parses an nginx time value the way nginx parses directives
// that take milliseconds (proxy_read_timeout, keepalive_timeout, ...):
// a number followed by an optional unit, ms, s, m, h, d or w, with several
// parts allowed in decreasing order ("1m30s", "1h 30m"); a bare number is
// seconds. Units may not repeat or go up ("30s1m" is invalid).
func ParseDuration(s string) (time.Duration, error) {
	ms, err := parseTime(s, false)
	if err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// parseSeconds parses a time given in whole seconds (nginx's is_sec mode,
// used by e.g. fail_timeout=): "ms" is not allowed, "M" (30 days) and "y"
// (365 days) are.
func parseSeconds(s string) (time.Duration, error) {
	sec, err := parseTime(s, true)
	if err != nil {
		return 0, err
	}
	if sec > math.MaxInt64/int64(time.Second) {
		return 0, errInvalid
	}
	return time.Duration(sec) * time.Second, nil
}

// parseTime follows ngx_parse_time: it returns milliseconds, or seconds when
// isSec is set.
func parseTime(s string, isSec bool) (int64, error) {
	const (
		stStart = iota
		stYear
		stMonth
		stWeek
		stDay
		stHour
		stMin
		stSec
		stMsec
		stLast
	)
	const maxVal = math.MaxInt64 / int64(time.Millisecond) // keep the result representable as a time.Duration
	step := stStart
	if !isSec {
		step = stMonth
	}
	var value, total int64
	valid := false
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= '0' && c <= '9' {
			if value > (maxVal-int64(c-'0'))/10 {
				return 0, errInvalid
			}
			value = value*10 + int64(c-'0')
			valid = true
			i++
			continue
		}
		i++
		var scale int64
		switch c {
		case 'y':
			if step > stStart {
				return 0, errInvalid
			}
			step, scale = stYear, 60*60*24*365
		case 'M':
			if step >= stMonth {
				return 0, errInvalid
			}
			step, scale = stMonth, 60*60*24*30
		case 'w':
			if step >= stWeek {
				return 0, errInvalid
			}
			step, scale = stWeek, 60*60*24*7
		case 'd':
			if step >= stDay {
				return 0, errInvalid
			}
			step, scale = stDay, 60*60*24
		case 'h':
			if step >= stHour {
				return 0, errInvalid
			}
			step, scale = stHour, 60*60
		case 'm':
			if i < len(s) && s[i] == 's' {
				if isSec || step >= stMsec {
					return 0, errInvalid
				}
				i++
				step, scale = stMsec, 1
				break
			}
			if step >= stMin {
				return 0, errInvalid
			}
			step, scale = stMin, 60
		case 's':
			if step >= stSec {
				return 0, errInvalid
			}
			step, scale = stSec, 1
		case ' ':
			if step >= stSec {
				return 0, errInvalid
			}
			step, scale = stLast, 1
		default:
			return 0, errInvalid
		}
		if step != stMsec && !isSec {
			scale *= 1000
		}
		if value > maxVal/scale {
			return 0, errInvalid
		}
		value *= scale
		if total > maxVal-value {
			return 0, errInvalid
		}
		total += value
		value = 0
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	if !valid {
		return 0, errInvalid
	}
	if !isSec {
		if value > maxVal/1000 {
			return 0, errInvalid
		}
		value *= 1000
	}
	if total > maxVal-value {
		return 0, errInvalid
	}
	return total + value, nil
}

// ParseSize parses an nginx size: a decimal number of bytes with an optional
// k/K, m/M or g/G suffix (1024-based), e.g. "64k", "1m", "1g", "512".
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errInvalid
	}
	scale := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		scale = 1 << 10
	case 'm', 'M':
		scale = 1 << 20
	case 'g', 'G':
		scale = 1 << 30
	}
	if scale != 1 {
		s = s[:len(s)-1]
	}
	n, ok := atoi(s)
	if !ok || n > math.MaxInt64/scale {
		return 0, errInvalid
	}
	return n * scale, nil
}

// atoi is ngx_atoi: a non-empty run of decimal digits, nothing else (no sign).
func atoi(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// atoiInt is atoi limited to the int range (and to 32 bits, like nginx's
// ngx_int_t on the platforms people configure for).
func atoiInt(s string) (int, bool) {
	n, ok := atoi(s)
	if !ok || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}
