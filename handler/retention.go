package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// retention reads a retention setting: whole days ("30d") or a Go duration
// ("720h", "90s"); empty means def (0: keep forever).
func retention(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s=%q is not a positive number of days such as 30d", name, v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a retention such as 30d or 720h", name, v)
	}
	return d, nil
}
