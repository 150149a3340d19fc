package agent

import (
	"context"
	"time"

	"github.com/hakeeper/hakeeper/internal/haproxyapi"
)

// masterWatchLoop keeps a connection open to HAProxy's master CLI so that
// its death is seen the moment the kernel closes that connection, not at
// the next stats poll (HealthInterval, 100 ms by default): a container
// killed whole takes its supervisor with it, and nothing else writes the
// track file sooner. When the connection ends, one new connection tells a
// reload (the master re-executes and accepts again) from a death (see
// haproxyapi.Gone), and the health loop is woken to read the workers'
// socket at once, which decides. The stats poll stays for everything
// else: a worker that stops answering, backends without servers.
func (a *Agent) masterWatchLoop(ctx context.Context) {
	for ctx.Err() == nil {
		// When the attempt began, not when it succeeded: a master that
		// sent its prompt and then died may still be read from afterwards.
		began := time.Now()
		closed, err := haproxyapi.HoldMaster(ctx, a.o.Paths.MasterSocket())
		if err == nil {
			a.masterHeldAt.Store(began.UnixNano())
		}
		gone := haproxyapi.Gone(err)
		if a.masterGone.Swap(gone) != gone {
			a.wakeHealth()
		}
		if err != nil {
			// Not running (yet), or re-executing for a reload: the poll
			// watches it meanwhile.
			select {
			case <-ctx.Done():
				return
			case <-time.After(masterRetry):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-closed:
		}
	}
}

// masterRetry is how soon a refused master CLI is tried again.
const masterRetry = 50 * time.Millisecond

// wakeHealth makes the health loop look now rather than at its next tick.
func (a *Agent) wakeHealth() {
	select {
	case a.healthNow <- struct{}{}:
	default:
	}
}
