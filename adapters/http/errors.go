package http

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/ports"
)

// The error codes of the contract, and the extensions the service adds.
const (
	codeMalformedJSON        = "malformed_json"
	codeValidationFailed     = "validation_failed"
	codeInvalidQuery         = "invalid_query"
	codeUnauthorized         = "unauthorized"
	codeNotFound             = "not_found"
	codePayloadTooLarge      = "payload_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeRateLimited          = "rate_limited"
	codeUnavailable          = "unavailable"
	codeInternal             = "internal"

	// Extensions.
	codeForbidden        = "forbidden"
	codeConflict         = "conflict" // the resource's state does not allow the change
	codeMethodNotAllowed = "method_not_allowed"
	codeRequestTimeout   = "request_timeout"
	codeHeadersTooLarge  = "headers_too_large"
	codeBadRequest       = "bad_request"
)

// unavailableRetryAfter is what Retry-After says when a dependency is down.
const unavailableRetryAfter = 5 * time.Second

const mimeJSON = "application/json; charset=utf-8"

// detail names one bad field or parameter.
type detail struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// apiError is an answer decided at the edge: it carries the status, code, message, details
// and headers of the error body as they will be sent.
type apiError struct {
	status     int
	code       string
	message    string
	details    []detail
	retryAfter time.Duration // sets Retry-After (whole seconds, at least 1) when positive
}

func (e *apiError) Error() string {
	return e.code + ": " + e.message
}

func malformedJSON(message string, details ...detail) *apiError {
	return &apiError{status: fiber.StatusBadRequest, code: codeMalformedJSON, message: message, details: details}
}

type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []detail `json:"details,omitempty"`
}

// handleError is Fiber's ErrorHandler: it maps every error a request ends with to the
// contract's error body, and logs those that are the service's fault. Errors raised before
// routing (an oversized body, for one) arrive here without having passed the middleware;
// they get their request id, log line and metrics here.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	unrouted := requestID(c) == ""
	start := time.Now()
	if unrouted {
		assignRequestID(c)
		if errors.Is(err, fiber.ErrBadGateway) {
			// Fiber's name for a connection that failed while the request was read (the
			// client reset it, say): the client's doing, not the service's.
			err = fiber.ErrBadRequest
		}
	}
	e := s.apiErrorOf(c, err)
	if e.retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfterSeconds(e.retryAfter)))
	}
	if e.status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="plm"`)
	}
	if werr := c.Status(e.status).JSON(errorBody{Error: errorPayload{Code: e.code, Message: e.message, Details: e.details}}, mimeJSON); werr != nil {
		return fmt.Errorf("write error body: %w", werr)
	}
	if unrouted {
		s.record(c, start)
	}
	return nil
}

// apiErrorOf translates err; an error that is the service's fault is logged here, once.
func (s *Server) apiErrorOf(c *fiber.Ctx, err error) *apiError {
	var (
		ae *apiError
		ve *ports.ValidationError
		fe *fiber.Error
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		details := make([]detail, len(ve.Violations))
		for i, v := range ve.Violations {
			details[i] = detail{Field: v.Field, Message: v.Message}
		}
		msg := "1 field is invalid"
		if len(details) != 1 {
			msg = fmt.Sprintf("%d fields are invalid", len(details))
		}
		return &apiError{status: fiber.StatusBadRequest, code: codeValidationFailed, message: msg, details: details}
	case errors.Is(err, ports.ErrNotFound):
		return &apiError{status: fiber.StatusNotFound, code: codeNotFound, message: "no such resource"}
	case errors.Is(err, ports.ErrUnavailable):
		s.log.WarnContext(c.UserContext(), "dependency unavailable",
			"request_id", requestID(c), "route", s.routeLabel(c), "error", err)
		return &apiError{status: fiber.StatusServiceUnavailable, code: codeUnavailable,
			message: "a dependency is unavailable; nothing was done, retry later", retryAfter: unavailableRetryAfter}
	case errors.As(err, &fe) && fe.Code < fiber.StatusInternalServerError:
		return fiberClientError(fe)
	}
	s.log.ErrorContext(c.UserContext(), "request failed",
		"request_id", requestID(c), "method", methodLabel(c.Method()), "route", s.routeLabel(c), "error", err)
	return &apiError{status: fiber.StatusInternalServerError, code: codeInternal, message: "internal error"}
}

// fiberClientError maps the 4xx errors that Fiber and fasthttp raise themselves.
func fiberClientError(fe *fiber.Error) *apiError {
	switch fe.Code {
	case fiber.StatusNotFound:
		return &apiError{status: fe.Code, code: codeNotFound, message: "no such route"}
	case fiber.StatusMethodNotAllowed:
		return &apiError{status: fe.Code, code: codeMethodNotAllowed, message: "the route does not allow this method"}
	case fiber.StatusRequestEntityTooLarge:
		return &apiError{status: fe.Code, code: codePayloadTooLarge, message: "the body is larger than the limit"}
	case fiber.StatusRequestTimeout:
		return &apiError{status: fe.Code, code: codeRequestTimeout, message: "the request was not received in time"}
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return &apiError{status: fe.Code, code: codeHeadersTooLarge, message: "the request headers are too large"}
	}
	return &apiError{status: fiber.StatusBadRequest, code: codeBadRequest, message: "the request could not be read"}
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}
