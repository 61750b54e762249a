//go:build unix && go1.21 && !go1.27

package pollwait

import (
	"net"
	"os"
	"reflect"
	"syscall"
	"unsafe"
)

const supported = true

// runtime_pollWait is the runtime's poller wait, as internal/poll declares
// it: ctx is a pollDesc's runtimeCtx, mode 'r' or 'w'; it returns an
// error code (0: ready). Its signature has been the same since Go 1.9;
// the build constraint limits us to the releases checked
// (TestActiveOnThisToolchain fails on a toolchain this file leaves out).
//
//go:linkname runtime_pollWait internal/poll.runtime_pollWait
func runtime_pollWait(ctx uintptr, mode int) int

// Offsets of the poll descriptor, found once by field name:
// net.netFD.pfd and os.file.pfd are an internal/poll.FD, whose pd.runtimeCtx
// is the runtime's descriptor.
var (
	netFDCtxOff, fileCtxOff uintptr
	netFDOK, fileOK         bool
)

func init() {
	// *net.TCPConn and *net.UnixConn are a net.conn{fd *netFD}.
	if f, ok := reflect.TypeOf(net.TCPConn{}).FieldByName("fd"); ok && f.Type.Kind() == reflect.Pointer {
		netFDCtxOff, netFDOK = ctxOffset(f.Type.Elem())
	}
	// *os.File is a struct{*file}.
	if t := reflect.TypeOf(os.File{}); t.NumField() == 1 && t.Field(0).Type.Kind() == reflect.Pointer {
		fileCtxOff, fileOK = ctxOffset(t.Field(0).Type.Elem())
	}
}

// ctxOffset returns the offset of pfd.pd.runtimeCtx in the struct t.
func ctxOffset(t reflect.Type) (uintptr, bool) {
	if t.Kind() != reflect.Struct {
		return 0, false
	}
	pfd, ok := t.FieldByName("pfd")
	if !ok || pfd.Type.Kind() != reflect.Struct {
		return 0, false
	}
	pd, ok := pfd.Type.FieldByName("pd")
	if !ok || pd.Type.Kind() != reflect.Struct {
		return 0, false
	}
	rc, ok := pd.Type.FieldByName("runtimeCtx")
	if !ok || rc.Type.Kind() != reflect.Uintptr {
		return 0, false
	}
	return pfd.Offset + pd.Offset + rc.Offset, true
}

func newWaiter(c any) Waiter {
	var base unsafe.Pointer
	var off uintptr
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn, *net.TCPListener: // each holds fd *netFD
		if v := reflect.ValueOf(c); netFDOK && !v.IsNil() {
			base, off = fdPointer(v.Elem()), netFDCtxOff
		}
	case *os.File: // a struct{*file}
		if v := reflect.ValueOf(c); fileOK && !v.IsNil() {
			base, off = unsafe.Pointer(v.Elem().Field(0).Pointer()), fileCtxOff
		}
	}
	if base == nil {
		return Waiter{}
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Waiter{}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Waiter{}
	}
	// The descriptor is read under Control (which holds a reference), so
	// it is never one that a Close has already released; 0 means the
	// descriptor is not on the poller (a blocking file): then do nothing.
	pdField := unsafe.Add(base, off)
	return Waiter{rc: rc, wait: func(uintptr) {
		if ctx := *(*uintptr)(pdField); ctx != 0 {
			runtime_pollWait(ctx, 'r')
		}
	}}
}

// fdPointer returns the *netFD inside a net.TCPConn, net.UnixConn or
// net.TCPListener value.
func fdPointer(conn reflect.Value) unsafe.Pointer {
	fd := conn.FieldByName("fd")
	if !fd.IsValid() || fd.Kind() != reflect.Pointer {
		return nil
	}
	return unsafe.Pointer(fd.Pointer())
}
