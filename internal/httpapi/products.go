package httpapi

import (
	"log/slog"

	"dualsync/internal/domain"
)

func productResource(log *slog.Logger, db Store) resource[domain.Product, domain.ProductChange] {
	h := resource[domain.Product, domain.ProductChange]{
		log: log, path: "/api/products", decode: domain.DecodeProduct,
		id:     func(p domain.Product) int64 { return p.ID },
		dbList: db.ListProducts, dbGet: db.GetProduct, dbNew: db.CreateProduct,
		dbUpd: db.UpdateProduct, dbDel: db.DeleteProduct,
	}
	return h
}
