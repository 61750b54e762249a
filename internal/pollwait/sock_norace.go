//go:build !race

package pollwait

const raceBuild = false
