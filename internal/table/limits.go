package table

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Azure Table Storage's limits. Azurite enforces none of them exactly, Azure
// rejects the request, so every entity and transaction this adapter sends
// is checked here first (checkEntity in marshal, checkTxn before each
// transaction) and fails with a clear Internal error instead of a 400 from
// the service. Sources (Microsoft Learn):
//   - "Understanding the Table service data model"
//     (https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model):
//     at most 252 custom properties (255 with PartitionKey, RowKey and
//     Timestamp); an entity up to 1 MiB; property names up to 255
//     characters; String values up to 64 KiB (UTF-16, so 32,768 code
//     units); Binary up to 64 KiB; PartitionKey and RowKey strings up to
//     1 KiB each, without '/', '\', '#', '?' or control characters
//     U+0000-U+001F, U+007F-U+009F.
//   - "Performing entity group transactions"
//     (https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions):
//     at most 100 operations, one PartitionKey, each entity once, and a
//     payload of at most 4 MiB.
//   - The size of an entity, as the service counts it ("How the size of an
//     entity is calculated", https://learn.microsoft.com/archive/blogs/avkashchauhan/how-the-size-of-an-entity-is-caclulated-in-windows-azure-table-storage,
//     the formula behind the 1 MiB): 4 bytes + 2 × (characters of
//     PartitionKey and RowKey) + for each property 8 bytes + 2 × (characters
//     of its name) + its value: String 4 + 2 × characters, Binary 4 + bytes,
//     Int32 4, Int64 8, Double 8, DateTime 8, Guid 16, Boolean 1.
//     Characters are UTF-16 code units.
const (
	maxEntityBytes = 1 << 20
	maxStringBytes = 64 << 10
	maxBinaryBytes = 64 << 10
	maxProperties  = 252
	maxKeyBytes    = 1 << 10
	maxNameChars   = 255
	maxTxnOps      = 100
	maxTxnBytes    = 4 << 20
	// txnOpOverhead bounds what the SDK's multipart body adds to each
	// operation's entity JSON (boundary, part headers, request line with the
	// entity's URL, If-Match): a few hundred bytes; 2 KiB keeps the
	// estimate above the real payload, which tests measure on the wire.
	txnOpOverhead = 2 << 10
	// stringChunk is the most UTF-16 code units a String property holds.
	stringChunk = maxStringBytes / 2
)

// units is the length of s in UTF-16 code units, as Azure counts it.
func units(s string) int {
	n := 0
	for _, r := range s { // invalid UTF-8 reads as U+FFFD, as it is sent
		n += utf16.RuneLen(r)
	}
	return n
}

// propertySize is the service's size of one property value; ok is false
// for a type this adapter never writes.
func propertySize(v any) (int, bool) {
	switch v := v.(type) {
	case string:
		return 4 + 2*units(v), true
	case aztables.EDMBinary:
		return 4 + len(v), true
	case []byte:
		return 4 + len(v), true
	case int32:
		return 4, true
	case aztables.EDMInt64:
		return 8, true
	case int64, float64, aztables.EDMDateTime, time.Time:
		return 8, true
	case aztables.EDMGUID:
		return 16, true
	case bool:
		return 1, true
	}
	return 0, false
}

// ErrLimit marks what Azure would refuse for its limits: Internal, since
// the adapter built the entity (no client input reaches a key or property
// unchecked).
var ErrLimit = errors.New("past an Azure Table Storage limit")

func limitError(format string, a ...any) error {
	return domain.Wrap(domain.KindInternal, ErrLimit, "Azure Table Storage limit: "+fmt.Sprintf(format, a...))
}

// entitySize checks one entity against Azure's limits and returns its size
// by the service's arithmetic.
func entitySize(pk, rk string, props map[string]any) (int, error) {
	for _, k := range []struct{ what, v string }{{"PartitionKey", pk}, {"RowKey", rk}} {
		if err := azureKey(k.v); err != nil {
			return 0, limitError("%s %.40q: %v", k.what, k.v, err)
		}
	}
	if len(props) > maxProperties {
		return 0, limitError("entity %s/%s has %d properties, at most %d", pk, rk, len(props), maxProperties)
	}
	size := 4 + 2*(units(pk)+units(rk))
	for name, v := range props {
		if n := units(name); n == 0 || n > maxNameChars || !identifier(name) {
			return 0, limitError("entity %s/%s: property name %.40q", pk, rk, name)
		}
		n, ok := propertySize(v)
		if !ok {
			return 0, limitError("entity %s/%s: property %s of type %T", pk, rk, name, v)
		}
		switch v.(type) {
		case string:
			if n-4 > maxStringBytes {
				return 0, limitError("entity %s/%s: string property %s takes %d bytes, at most %d", pk, rk, name, n-4, maxStringBytes)
			}
		case aztables.EDMBinary, []byte:
			if n-4 > maxBinaryBytes {
				return 0, limitError("entity %s/%s: binary property %s takes %d bytes, at most %d", pk, rk, name, n-4, maxBinaryBytes)
			}
		}
		size += 8 + 2*units(name) + n
	}
	if size > maxEntityBytes {
		return 0, limitError("entity %s/%s takes %d bytes, at most %d", pk, rk, size, maxEntityBytes)
	}
	return size, nil
}

// azureKey checks a PartitionKey or RowKey as Azure does.
func azureKey(k string) error {
	if 2*units(k) > maxKeyBytes {
		return fmt.Errorf("%d bytes, at most %d", 2*units(k), maxKeyBytes)
	}
	for _, r := range k {
		if strings.ContainsRune("/\\#?", r) || r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("character %q is not allowed", r)
		}
	}
	return nil
}

// identifier reports whether name is a C# identifier of ASCII letters,
// digits and '_' (all this adapter uses), as property names must be.
func identifier(name string) bool {
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return name != ""
}

// checkTxn checks an entity group transaction: its operation count, one
// partition, each entity once, and its payload, estimated from the entity
// bodies (tests measure the real one).
func checkTxn(acts []aztables.TransactionAction) error {
	if len(acts) == 0 || len(acts) > maxTxnOps {
		return limitError("a transaction of %d operations, 1 to %d", len(acts), maxTxnOps)
	}
	var pk string
	seen := map[string]bool{}
	bytes := 0
	for i, a := range acts {
		var keys struct{ PartitionKey, RowKey string }
		if err := json.Unmarshal(a.Entity, &keys); err != nil {
			return domain.Wrap(domain.KindInternal, err, "read transaction entity")
		}
		if i == 0 {
			pk = keys.PartitionKey
		}
		if keys.PartitionKey != pk {
			return limitError("a transaction spans partitions %s and %s", pk, keys.PartitionKey)
		}
		if seen[keys.RowKey] {
			return limitError("a transaction names entity %s/%s twice", pk, keys.RowKey)
		}
		seen[keys.RowKey] = true
		bytes += len(a.Entity) + txnOpOverhead
	}
	if bytes > maxTxnBytes {
		return limitError("a transaction of about %d bytes, at most %d", bytes, maxTxnBytes)
	}
	return nil
}

// splitLong cuts every string property longer than Azure's 64 KiB into
// name, name_1, name_2, ... (each at most stringChunk UTF-16 code units,
// never inside a surrogate pair); joinLong puts them back. A writer that
// merges a shorter value over a split one must clear name_1 with "" (a
// reader stops at the first missing or empty chunk).
func splitLong(props map[string]any) {
	for name, v := range props {
		s, ok := v.(string)
		if !ok || units(s) <= stringChunk {
			continue
		}
		parts := splitUnits(s, stringChunk)
		props[name] = parts[0]
		for i, p := range parts[1:] {
			props[name+"_"+strconv.Itoa(i+1)] = p
		}
	}
}

// splitUnits cuts s into pieces of at most n UTF-16 code units, at
// character boundaries.
func splitUnits(s string, n int) []string {
	var out []string
	start, count := 0, 0
	for i, r := range s {
		u := utf16.RuneLen(r)
		if u < 0 {
			u = 1
		}
		if count+u > n {
			out = append(out, s[start:i])
			start, count = i, 0
		}
		count += u
	}
	return append(out, s[start:])
}

// joinLong reverses splitLong on properties read back.
func joinLong(props map[string]any) {
	for name, v := range props {
		s, ok := v.(string)
		if !ok || strings.Contains(name, "_") {
			continue
		}
		if _, split := props[name+"_1"]; !split {
			continue
		}
		var b strings.Builder
		b.WriteString(s)
		for i := 1; ; i++ {
			k := name + "_" + strconv.Itoa(i)
			p, _ := props[k].(string)
			if p == "" {
				break
			}
			b.WriteString(p)
		}
		props[name] = b.String()
	}
	for name := range props {
		if i := strings.LastIndexByte(name, '_'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				if _, base := props[name[:i]].(string); base {
					delete(props, name)
				}
			}
		}
	}
}

// wireEntity decodes an entity as the SDK sends it (JSON with
// "name@odata.type" annotations) into the Go types propertySize knows:
// tests check what goes over the wire with it.
func wireEntity(body []byte) (pk, rk string, props map[string]any, err error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return "", "", nil, err
	}
	types := map[string]string{}
	for k, v := range raw {
		if name, ok := strings.CutSuffix(k, "@odata.type"); ok {
			var t string
			_ = json.Unmarshal(v, &t)
			types[name] = t
		}
	}
	props = map[string]any{}
	for k, v := range raw {
		if strings.Contains(k, "@") || strings.HasPrefix(k, "odata.") || k == "Timestamp" {
			continue
		}
		var val any
		dec := json.NewDecoder(strings.NewReader(string(v)))
		dec.UseNumber()
		if err := dec.Decode(&val); err != nil {
			return "", "", nil, err
		}
		switch k {
		case "PartitionKey":
			pk, _ = val.(string)
			continue
		case "RowKey":
			rk, _ = val.(string)
			continue
		}
		switch t := types[k]; {
		case t == "Edm.Int64":
			props[k] = aztables.EDMInt64(0)
		case t == "Edm.DateTime":
			props[k] = aztables.EDMDateTime{}
		case t == "Edm.Guid":
			props[k] = aztables.EDMGUID("")
		case t == "Edm.Double":
			props[k] = float64(0)
		case t == "Edm.Int32":
			props[k] = int32(0)
		case t == "Edm.Binary":
			s, _ := val.(string)
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", "", nil, fmt.Errorf("property %s: %w", k, err)
			}
			props[k] = aztables.EDMBinary(b)
		case t != "" && t != "Edm.String" && t != "Edm.Boolean":
			return "", "", nil, fmt.Errorf("property %s: type %s", k, t)
		default:
			switch x := val.(type) {
			case string:
				props[k] = x
			case bool:
				props[k] = x
			case json.Number: // an untyped integer is Int32, anything else Double
				if _, err := strconv.ParseInt(string(x), 10, 32); err == nil {
					props[k] = int32(0)
				} else {
					props[k] = float64(0)
				}
			default:
				return "", "", nil, fmt.Errorf("property %s: value %s", k, v)
			}
		}
	}
	return pk, rk, props, nil
}
