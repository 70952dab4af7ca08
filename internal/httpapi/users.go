package httpapi

import (
	"log/slog"

	"dualsync/internal/domain"
)

func userResource(log *slog.Logger, db Store) resource[domain.User, domain.UserChange] {
	h := resource[domain.User, domain.UserChange]{
		log: log, path: "/api/users", decode: domain.DecodeUser,
		id:     func(u domain.User) int64 { return u.ID },
		dbList: db.ListUsers, dbGet: db.GetUser, dbNew: db.CreateUser,
		dbUpd: db.UpdateUser, dbDel: db.DeleteUser,
	}
	return h
}
