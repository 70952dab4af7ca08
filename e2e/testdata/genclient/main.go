// Command genclient is compiled by e2e/TestGeneratedClientMoney against a
// client that oapi-codegen generates from the served OpenAPI document (the
// client package is written next to this file at test time). It creates a
// product per price given, reads each back, and prints what came back as
// JSON lines: {"sent":..., "created":..., "read":...}.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"genclient/client"
)

func main() {
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "genclient:", err)
		os.Exit(1)
	}
}

func run(server string, prices []string) error {
	ctx := context.Background()
	c, err := client.NewClientWithResponses(server)
	if err != nil {
		return err
	}
	for _, p := range prices {
		// The document's price is a string: the generated field is a
		// string, so this line would not compile if it were a float.
		var price client.MoneyInput = p
		created, err := c.CreateProductWithResponse(ctx, client.CreateProductJSONRequestBody{Name: "money " + p, Price: price})
		if err != nil {
			return err
		}
		if created.StatusCode() != http.StatusCreated || created.JSON201 == nil {
			return fmt.Errorf("create %s: %d %s", p, created.StatusCode(), created.Body)
		}
		read, err := c.GetProductWithResponse(ctx, created.JSON201.Id)
		if err != nil {
			return err
		}
		if read.StatusCode() != http.StatusOK || read.JSON200 == nil {
			return fmt.Errorf("get %d: %d %s", created.JSON201.Id, read.StatusCode(), read.Body)
		}
		line, _ := json.Marshal(map[string]any{"sent": p, "id": created.JSON201.Id, "created": created.JSON201.Price, "read": read.JSON200.Price})
		fmt.Println(string(line))
	}
	return nil
}
