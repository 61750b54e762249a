//go:build linux && go1.26 && !go1.27

#include "textflag.h"

// func casUintptr(addr *uintptr, old, new uintptr) bool
//
// An exclusive load-acquire / store-release pair, retried while another
// store broke the reservation: sequentially consistent like the runtime's
// own CAS, and available on every ARMv8 core (CASAL needs ARMv8.1).
TEXT ·casUintptr(SB), NOSPLIT, $0-25
	MOVD	addr+0(FP), R0
	MOVD	old+8(FP), R1
	MOVD	new+16(FP), R2
retry:
	LDAXR	(R0), R3
	CMP	R1, R3
	BNE	differ
	STLXR	R2, (R0), R4
	CBNZ	R4, retry
	MOVD	$1, R5
	MOVB	R5, ret+24(FP)
	RET
differ:
	MOVB	ZR, ret+24(FP)
	RET
