package explore

import (
	"testing"

	"dualsync/internal/table/recordertest"
)

// TestRecorderContract runs the recorder contract suite (the one
// internal/table's Store passes on Azurite) against the in-memory Recorder.
func TestRecorderContract(t *testing.T) {
	recordertest.Run(t, func(t *testing.T) recordertest.Recorder { return NewRecorder() })
}
