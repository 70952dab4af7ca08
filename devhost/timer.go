package devhost

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

type timerSpec struct {
	expr         string
	sched        cron.Schedule
	loc          *time.Location
	runOnStartup bool
	useMonitor   bool
}

// cronParser reads six-field NCRONTAB ({second} {minute} {hour} {day} {month} {day-of-week}).
var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseTimer parses a timer schedule: six-field NCRONTAB, or a TimeSpan
// ("00:00:30"), which the host accepts on App Service plans.
func parseTimer(expr string, s settings) (*timerSpec, error) {
	spec := &timerSpec{expr: expr, loc: time.UTC}
	// TIMER-DOC: UTC unless WEBSITE_TIME_ZONE is set (IANA names on Linux).
	if tz, ok := s.get("WEBSITE_TIME_ZONE"); ok && tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("WEBSITE_TIME_ZONE %q: %w", tz, err)
		}
		spec.loc = loc
	}
	fields := strings.Fields(expr)
	switch {
	case strings.Contains(expr, ":") && len(fields) == 1:
		d, err := parseTimeSpan(expr)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is neither NCRONTAB nor a positive TimeSpan", expr)
		}
		spec.sched = cron.ConstantDelaySchedule{Delay: d}
	case len(fields) == 5:
		// [conflict] TIMER-DOC (2026) accepts five fields; older docs require six.
		// Accept five by adding second 0, as the newer host does.
		sched, err := cronParser.Parse("0 " + expr)
		if err != nil {
			return nil, fmt.Errorf("invalid NCRONTAB %q: %w", expr, err)
		}
		spec.sched = sched
	case len(fields) == 6:
		sched, err := cronParser.Parse(expr)
		if err != nil {
			return nil, fmt.Errorf("invalid NCRONTAB %q: %w", expr, err)
		}
		spec.sched = sched
	default:
		return nil, fmt.Errorf("invalid NCRONTAB %q: want six fields {second} {minute} {hour} {day} {month} {day-of-week}", expr)
	}
	// useMonitor defaults to true, except for schedules that fire more than once
	// a minute (TimerTriggerAttribute).
	now := time.Now().In(spec.loc)
	a := spec.sched.Next(now)
	b := spec.sched.Next(a)
	spec.useMonitor = b.Sub(a) >= time.Minute
	return spec, nil
}

// dotnetTime formats like Newtonsoft serialises a DateTimeOffset.
func dotnetTime(t time.Time) string {
	return t.Format("2006-01-02T15:04:05.9999999-07:00")
}

// runTimer fires fn on its schedule until ctx ends. Invocations of one timer
// never overlap: like the host's TimerListener, the next occurrence is computed
// after the previous invocation has finished.
func (h *Host) runTimer(ctx context.Context, fn *function) {
	spec := fn.timer
	var last time.Time
	if spec.runOnStartup {
		last = time.Now()
		h.fireTimer(ctx, fn, last, time.Time{}, "Timer fired at "+dotnetTime(time.Now().UTC()))
	}
	for {
		next := spec.sched.Next(time.Now().In(spec.loc))
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		h.fireTimer(ctx, fn, next, last, "Timer fired at "+dotnetTime(time.Now().UTC()))
		last = next
	}
}

func (h *Host) fireTimer(ctx context.Context, fn *function, occurrence, last time.Time, reason string) {
	h.inflight.Add(1)
	defer h.inflight.Done()
	info := h.timerInfo(fn, occurrence, last)
	// An invocation runs to completion even when shutdown begins.
	_ = h.run(context.WithoutCancel(ctx), fn, reason, func(ctx context.Context, id string) error {
		data := map[string]any{fn.Trigger.Name: info}
		meta := map[string]any{"sys": sysMeta(fn)}
		res, err := h.invokeEnvelope(ctx, fn, id, data, meta)
		if err != nil {
			return err
		}
		return h.writeOutputs(ctx, fn, res)
	})
}

// timerInfo builds the TimerInfo payload (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers). devhost keeps no
// schedule monitor blob: with useMonitor the status is computed in memory
// (Last is year 1 on the first run, as on a fresh host), and IsPastDue is
// always false because missed occurrences are not detected across restarts.
func (h *Host) timerInfo(fn *function, occurrence, last time.Time) map[string]any {
	var status any
	if fn.timer.useMonitor {
		lastS := "0001-01-01T00:00:00"
		if !last.IsZero() {
			lastS = dotnetTime(last.UTC())
		}
		status = map[string]any{
			"Last":        lastS,
			"Next":        dotnetTime(fn.timer.sched.Next(occurrence.In(fn.timer.loc)).UTC()),
			"LastUpdated": dotnetTime(time.Now().UTC()),
		}
	}
	return map[string]any{
		"Schedule":       map[string]any{"AdjustForDST": true},
		"ScheduleStatus": status,
		"IsPastDue":      false,
	}
}
