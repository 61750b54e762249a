//go:build race

package pollwait

const raceBuild = true
