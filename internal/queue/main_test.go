package queue

import (
	"testing"

	"dualsync/internal/testenv"
)

// TestMain stops the Azurite these tests may have started (none is left
// behind when nothing listens on the default ports).
func TestMain(m *testing.M) { testenv.Main(m) }
