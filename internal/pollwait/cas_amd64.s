//go:build linux && amd64 && go1.26 && !go1.27

#include "textflag.h"

// func casUintptr(addr *uintptr, old, new uintptr) bool
TEXT ·casUintptr(SB), NOSPLIT, $0-25
	MOVQ	addr+0(FP), BX
	MOVQ	old+8(FP), AX
	MOVQ	new+16(FP), CX
	LOCK
	CMPXCHGQ	CX, 0(BX)
	SETEQ	ret+24(FP)
	RET
