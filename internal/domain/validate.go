package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/go-playground/validator/v10"
)

// Mode says which fields a request body must carry.
type Mode int

const (
	ModeCreate  Mode = iota // POST: every required field
	ModeReplace             // PUT: every required field; omitted optional fields are cleared
	ModePatch               // PATCH: any non-empty subset
)

// readOnly fields may appear in a request body (so a client can PUT back what
// it GOT) and are ignored: the server owns ids and timestamps.
var readOnly = map[string]bool{"id": true, "createdAt": true, "updatedAt": true}

// validate is stateless after construction and safe for concurrent use.
var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		return strings.SplitN(f.Tag.Get("json"), ",", 2)[0]
	})
	if err := v.RegisterValidation("maxunits", maxUnits); err != nil {
		panic(err) // only a programming error (bad tag name) gets here
	}
	return v
}()

// maxUnits limits a string's length in UTF-16 code units: SQL Server's
// NVARCHAR(n) counts those, so a character outside the BMP (an emoji) takes
// two, while PostgreSQL's varchar(n) counts characters. Code units are never
// fewer than characters, so this one limit fits both databases.
func maxUnits(fl validator.FieldLevel) bool {
	limit, err := strconv.Atoi(fl.Param())
	if err != nil {
		return false
	}
	n := 0
	for _, r := range fl.Field().String() {
		n += utf16.RuneLen(r)
	}
	return n <= limit
}

type productFields struct {
	Name        string `json:"name" validate:"min=1,maxunits=255"`
	Description string `json:"description" validate:"maxunits=4000"`
	Price       Money  `json:"price" validate:"gte=0,lte=9999999999"`
}

type userFields struct {
	Name  string `json:"name" validate:"min=1,maxunits=100"`
	Email string `json:"email" validate:"maxunits=254,email"`
}

// DecodeProduct parses and validates a product request body. Every problem
// found is reported at once, per field, in an invalid-kind *Error.
func DecodeProduct(body []byte, mode Mode) (ProductChange, error) {
	var (
		c      ProductChange
		f      productFields
		errs   = map[string]string{}
		fields map[string]json.RawMessage
	)
	if err := decodeObject(body, &fields); err != nil {
		return c, err
	}
	present := []string{}
	for key, raw := range fields {
		switch key {
		case "name":
			if s, ok := stringField(raw, key, errs); ok {
				f.Name, c.Name = s, &f.Name
				present = append(present, key)
			}
		case "description":
			if isNull(raw) {
				c.Description = &f.Description
				continue
			}
			if s, ok := stringField(raw, key, errs); ok {
				f.Description, c.Description = s, &f.Description
				present = append(present, key)
			}
		case "price":
			if m, ok := moneyField(raw, key, errs); ok {
				f.Price, c.Price = m, &f.Price
				present = append(present, key)
			}
		default:
			unknownField(key, errs)
		}
	}
	if mode != ModePatch {
		requireFields(errs, fields, "name", "price")
		if c.Description == nil {
			c.Description = &f.Description // replace clears an omitted description
		}
	}
	if mode == ModePatch && !hasChangeable(fields) {
		return c, Errorf(KindInvalid, "the body has no field to change")
	}
	return c, checkFields(&f, present, errs)
}

// DecodeUser parses and validates a user request body.
func DecodeUser(body []byte, mode Mode) (UserChange, error) {
	var (
		c      UserChange
		f      userFields
		errs   = map[string]string{}
		fields map[string]json.RawMessage
	)
	if err := decodeObject(body, &fields); err != nil {
		return c, err
	}
	present := []string{}
	for key, raw := range fields {
		switch key {
		case "name":
			if s, ok := stringField(raw, key, errs); ok {
				f.Name, c.Name = s, &f.Name
				present = append(present, key)
			}
		case "email":
			if s, ok := stringField(raw, key, errs); ok {
				f.Email, c.Email = strings.TrimSpace(s), &f.Email
				present = append(present, key)
				if !emailKeyFits(f.Email) {
					errs[key] = "must be at most 254 characters once normalised"
				}
			}
		default:
			unknownField(key, errs)
		}
	}
	if mode != ModePatch {
		requireFields(errs, fields, "name", "email")
	}
	if mode == ModePatch && !hasChangeable(fields) {
		return c, Errorf(KindInvalid, "the body has no field to change")
	}
	return c, checkFields(&f, present, errs)
}

// hasChangeable reports whether a body names any field besides the ignored
// read-only ones: a PATCH of only {"id":..} would otherwise bump updatedAt
// (and sync a new version) while changing nothing.
func hasChangeable(fields map[string]json.RawMessage) bool {
	for key := range fields {
		if !readOnly[key] {
			return true
		}
	}
	return false
}

func decodeObject(body []byte, fields *map[string]json.RawMessage) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Errorf(KindInvalid, "the request body is empty; send a JSON object")
	}
	if body[0] != '{' {
		return Errorf(KindInvalid, "the request body must be a JSON object")
	}
	if err := json.Unmarshal(body, fields); err != nil {
		return &Error{Kind: KindInvalid, Message: "the request body is not valid JSON: " + jsonProblem(err), Err: err}
	}
	return nil
}

// jsonProblem describes a JSON syntax error without echoing the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed JSON"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func stringField(raw json.RawMessage, key string, errs map[string]string) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		errs[key] = "must be a string"
		return "", false
	}
	if strings.ContainsRune(s, 0) {
		errs[key] = "must not contain NUL characters"
		return "", false
	}
	return s, true
}

func moneyField(raw json.RawMessage, key string, errs map[string]string) (Money, bool) {
	text := string(bytes.TrimSpace(raw))
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(raw, &text); err != nil {
			errs[key] = "must be a number or a numeric string"
			return 0, false
		}
		text = strings.TrimSpace(text)
	} else if len(text) == 0 || !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) {
		errs[key] = "must be a number or a numeric string"
		return 0, false
	}
	m, err := ParseMoney(text)
	if err != nil {
		errs[key] = err.Error()
		return 0, false
	}
	return m, true
}

func unknownField(key string, errs map[string]string) {
	if !readOnly[key] {
		errs[key] = "unknown field"
	}
}

func requireFields(errs map[string]string, fields map[string]json.RawMessage, names ...string) {
	for _, n := range names {
		if raw, ok := fields[n]; !ok || isNull(raw) {
			if _, has := errs[n]; !has {
				errs[n] = "is required"
			}
		}
	}
}

// checkFields runs the struct rules on the fields that were present and well
// typed, and folds every failure into one invalid-kind error.
func checkFields(f any, present []string, errs map[string]string) error {
	if len(present) > 0 {
		// StructPartial names fields as Go does; JSON names differ only in case.
		goNames := make([]string, len(present))
		for i, n := range present {
			goNames[i] = strings.ToUpper(n[:1]) + n[1:]
		}
		if err := validate.StructPartial(f, goNames...); err != nil {
			verrs, ok := err.(validator.ValidationErrors)
			if !ok {
				return Wrap(KindInternal, err, "validation failed")
			}
			for _, fe := range verrs {
				if _, has := errs[fe.Field()]; !has {
					errs[fe.Field()] = ruleMessage(fe)
				}
			}
		}
	}
	if len(errs) > 0 {
		return &Error{Kind: KindInvalid, Message: "the request has invalid fields", Fields: errs}
	}
	return nil
}

func ruleMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "min":
		if fe.Param() == "1" {
			return "must not be empty"
		}
		return "must be at least " + fe.Param() + " characters long"
	case "max":
		return "must be at most " + fe.Param() + " characters long"
	case "maxunits":
		return "must be at most " + fe.Param() + " characters long (characters outside the Basic Multilingual Plane, such as emoji, count as two)"
	case "email":
		return "must be a valid email address"
	case "gte":
		return "must not be negative"
	case "lte":
		return "must be less than 100000000"
	default:
		return "is invalid (" + fe.Tag() + ")"
	}
}
