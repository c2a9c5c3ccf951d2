// Package ports holds the interfaces between the application and the adapters that serve it.
package ports

import (
	"errors"
	"fmt"
)

// Errors that adapters translate their own failures into.
var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: a dependency (storage, queue) cannot be reached now; retrying may work.
	ErrUnavailable = errors.New("unavailable")
	// ErrConflict: the write clashes with what is stored.
	ErrConflict = errors.New("conflict")
	// ErrFenced: the writer no longer holds the partition its batch belongs to; another
	// worker has taken it over, and this worker must stop processing it.
	ErrFenced = errors.New("partition taken over by another worker")
)

// Violation is one rule an input field breaks. Field uses the wire names and indexes
// ("readings[3].value").
type Violation struct {
	Field   string
	Message string
}

// ValidationError is returned for input that breaks the rules; it names every bad field.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	if len(e.Violations) == 1 {
		return "invalid input: " + e.Violations[0].Field + ": " + e.Violations[0].Message
	}
	return fmt.Sprintf("invalid input: %d fields are invalid", len(e.Violations))
}
