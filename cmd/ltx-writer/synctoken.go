package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ltxvfs/ltxvfs/writer"
)

// syncTokenTimeout bounds the sync behind one /sync request.
const syncTokenTimeout = 30 * time.Second

// syncHandler serves read-your-writes tokens at /sync?db=PATH (on the
// metrics address): it syncs the database and answers with the token of
// everything committed before the request (writer.Replicator.SyncToken),
// one line of text, for an application in another process to hand to its
// readers (PRAGMA ltx_wait, wait=).
type syncHandler struct {
	log *slog.Logger

	mu   sync.RWMutex
	reps map[string]*writer.Replicator // by absolute path and by the path as configured
	dbs  []string                      // absolute paths, for errors
}

func newSyncHandler(log *slog.Logger) *syncHandler {
	return &syncHandler{log: log, reps: map[string]*writer.Replicator{}}
}

// add serves r, named by its path as configured or its absolute path.
func (h *syncHandler) add(configured string, r *writer.Replicator) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reps[configured] = r
	h.reps[filepath.Clean(configured)] = r
	h.reps[r.Path()] = r
	h.dbs = append(h.dbs, r.Path())
}

// find returns the replicator db names ("" when one database is
// replicated), or an HTTP status and message.
func (h *syncHandler) find(db string) (*writer.Replicator, int, string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	known := strings.Join(h.dbs, ", ")
	switch {
	case db == "" && len(h.dbs) == 1:
		return h.reps[h.dbs[0]], 0, ""
	case db == "" && len(h.dbs) == 0:
		return nil, http.StatusServiceUnavailable, "no database is being replicated yet"
	case db == "":
		return nil, http.StatusBadRequest, fmt.Sprintf("give db=PATH: this writer replicates %s", known)
	}
	if r := h.reps[db]; r != nil {
		return r, 0, ""
	}
	if len(h.dbs) == 0 {
		return nil, http.StatusNotFound, fmt.Sprintf("db=%s: no database is being replicated yet", db)
	}
	return nil, http.StatusNotFound, fmt.Sprintf("db=%s: this writer does not replicate it (it replicates %s)", db, known)
}

func (h *syncHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, fmt.Sprintf("method %s: /sync answers GET or POST", req.Method), http.StatusMethodNotAllowed)
		return
	}
	q := req.URL.Query()
	if vs := q["db"]; len(vs) > 1 {
		http.Error(w, fmt.Sprintf("db= given %d times: give one database", len(vs)), http.StatusBadRequest)
		return
	}
	db := q.Get("db")
	r, status, msg := h.find(db)
	if r == nil {
		http.Error(w, msg, status)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), syncTokenTimeout)
	defer cancel()
	tok, err := r.SyncToken(ctx)
	if err != nil {
		h.log.Warn("read-your-writes token not given", "db", r.Path(), "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, tok)
}
