package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/bench"
	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/network"
)

// newBenchCmd is `iotledger bench`: iotledger against raw Fabric on the same
// network, in one run.
func newBenchCmd(g *globalOptions) *cobra.Command {
	var (
		quick          bool
		stateDir       string
		sourceDir      string
		keep           bool
		batchSize      int
		concurrency    string
		duration       time.Duration
		orderers       int
		batchTO        time.Duration
		only           string
		hubDevices     int
		hubSubmit      int
		hubGatewayPlan bool
		hubBatchWait   time.Duration
		cpuProfile     string
		batchConc      string
		saveJSON       string
		blockProf      string
		soak           soakFlags
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure iotledger against raw Fabric (Put/Get of a reference chaincode) on the same network, in one run",
		Long: `Deploys the reference chaincode (Put/Get, nothing else) next to iotledger with the same endorsement
policy and applies closed-loop load at several concurrencies: raw Put and Get (the baseline), device
enroll, single-reading and batched telemetry, CheckAccess, and devices → MQTT → hub → ledger.
Every figure is shown with its ratio to the baseline of the same run (Put for submits, Get for
evaluates), with p50/p99 latency and the CPU of every network process and of the bench itself.

Without --state-dir it brings a fresh network up in a temporary directory and takes it down at
the end (--keep leaves it running). --quick is about 2 minutes of load, the full run about 10.

--soak DURATION runs sustained batched telemetry instead (device-disjoint concurrent batches, a
heavy device in each) while an org's index follows the channel, and reports per interval the
readings committed, readings/s, the index's lag and device range-query latency, then the bytes per
reading each peer's block files, state database and the index grew by. The ≥ 2 M-reading goal
takes --soak 15m or longer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := bench.FullConfig()
			if quick {
				cfg = bench.QuickConfig()
			}
			cfg.BatchSize = batchSize
			cfg.DevicesPerWorker = min(cfg.DevicesPerWorker, batchSize)
			if concurrency != "" {
				cs, err := parseConcurrency(concurrency)
				if err != nil {
					return err
				}
				cfg.Concurrency = cs
			}
			if batchConc != "" {
				cs, err := parseConcurrency(batchConc)
				if err != nil {
					return err
				}
				cfg.BatchConcurrency = cs
			}
			if duration > 0 {
				cfg.Duration = duration
			}
			if only != "" {
				for _, w := range strings.Split(only, ",") {
					cfg.Only = append(cfg.Only, strings.TrimSpace(w))
				}
			}
			if hubDevices > 0 {
				cfg.Hub.Devices = hubDevices
			}
			if hubSubmit > 0 {
				cfg.Hub.Submitters = hubSubmit
			}
			cfg.Hub.GatewayPlan = hubGatewayPlan
			if hubBatchWait < 0 {
				return usageErrorf("invalid --hub-batch-wait %s: must be positive", hubBatchWait)
			}
			if hubBatchWait > 0 {
				cfg.Hub.BatchWait = hubBatchWait
			}
			stderr := cmd.ErrOrStderr()
			cfg.Progress = stderr
			cfg.Logger = networkLogger(g, stderr)
			var soakCfg bench.SoakConfig
			if soak.duration != 0 {
				var err error
				if soakCfg, err = soak.config(cmd.Flags().Changed("batch-size"), batchSize); err != nil {
					return err
				}
				soakCfg.Progress, soakCfg.Logger = stderr, cfg.Logger
			} else if err := cfg.Validate(); err != nil {
				return err
			}

			ctx := cmd.Context()
			opened, err := bench.OpenNetwork(ctx, bench.NetworkOptions{
				StateDir:  stateDir,
				SourceDir: sourceDir,
				Keep:      keep,
				Up:        network.Options{Orderers: orderers, BatchTimeout: batchTO},
				Progress:  stderr,
				Logger:    cfg.Logger,
			})
			defer closeBenchNetwork(opened, cfg.Logger)
			if err != nil {
				return err
			}
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			if blockProf != "" {
				stopBlock := startBlockProfile(blockProf, cfg.Logger)
				defer stopBlock()
			}
			if soak.duration != 0 {
				return runSoak(ctx, g, cmd.OutOrStdout(), soakCfg, opened, saveJSON)
			}
			rep, runErr := bench.Run(ctx, cfg, opened.Target)
			if rep != nil {
				var werr error
				if g.json() {
					werr = rep.WriteJSON(cmd.OutOrStdout())
				} else {
					werr = rep.WriteTable(cmd.OutOrStdout())
				}
				if werr == nil && saveJSON != "" {
					werr = saveReport(saveJSON, rep)
				}
				if werr != nil && runErr == nil {
					runErr = werr
				}
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.BoolVar(&quick, "quick", false, "about 2 minutes of load (concurrency 32 and 128) instead of about 10 (16, 64, 256)")
	f.StringVar(&stateDir, "state-dir", "", "use the running network in this state directory instead of bringing one up")
	f.StringVar(&sourceDir, "source-dir", "", "iotledger source tree, for building the chaincode servers (default: found from the working directory)")
	f.BoolVar(&keep, "keep", false, "leave the network the bench brought up running (its state directory is printed)")
	f.IntVar(&batchSize, "batch-size", api.DefaultBatchReadings, fmt.Sprintf("readings per telemetry:SubmitBatch transaction (1-%d)", api.MaxBatchReadings))
	f.StringVar(&concurrency, "concurrency", "", "comma-separated closed-loop worker counts (default: 32,128 with --quick, else 16,64,256)")
	f.DurationVar(&duration, "duration", 0, "measured time of each workload at each concurrency (default 5s with --quick, else 25s)")
	f.IntVar(&orderers, "orderers", 0, "Raft orderers of a network the bench brings up (default 3)")
	f.DurationVar(&batchTO, "batch-timeout", 0, "BatchTimeout of a network the bench brings up (default 250ms)")
	f.StringVar(&batchConc, "batch-concurrency", "", "comma-separated worker counts of the batched telemetry workload (default: 8,32 with --quick, else 4,16,64)")
	f.StringVar(&only, "only", "", "comma-separated workloads to run (raw-put, raw-get, device-enroll, telemetry-submit, telemetry-batch, check-access, hub-ingest); default all")
	f.IntVar(&hubDevices, "hub-devices", 0, "MQTT devices of the end-to-end workload (default 100 with --quick, else 200)")
	f.IntVar(&hubSubmit, "hub-submitters", 0, "concurrent SubmitBatch calls of the hub (default 32)")
	f.DurationVar(&hubBatchWait, "hub-batch-wait", 0, "longest a reading waits in the hub for its batch to fill (hub --batch-wait; default 200ms)")
	f.BoolVar(&hubGatewayPlan, "hub-gateway-plan", false, "the hub leaves endorsement to the gateway's plan (its own org's peer first, then the others) instead of endorsing at every org at once (hub --parallel-endorsement all)")
	f.StringVar(&saveJSON, "save", "", "also write the JSON report to this file")
	f.StringVar(&blockProf, "blockprofile", "", "write a pprof profile of where the bench process's goroutines (devices and the in-process hub) block to this file")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the bench process (load generator, devices and the in-process hub) to this file")
	f.DurationVar(&soak.duration, "soak", 0, "instead of the workloads: sustained batched telemetry for this long (e.g. 15m) while an index follows the channel")
	f.StringVar(&soak.index, "soak-index", "", "PostgreSQL URL of the soak's index (default: SQLite in a temporary directory)")
	f.DurationVar(&soak.interval, "soak-interval", 0, "reporting interval of the soak (default a tenth of --soak, at least 10s)")
	f.IntVar(&soak.workers, "soak-workers", 0, "concurrent batches of the soak, each on its own devices (default 8)")
	return cmd
}

// soakFlags are the --soak flags of `iotledger bench`.
type soakFlags struct {
	duration time.Duration
	index    string
	interval time.Duration
	workers  int
}

// config is the soak the flags ask for; --batch-size applies when given
// (the soak's own default is larger than the workloads'), the heavy
// device then filling three fifths of each batch.
func (s soakFlags) config(batchSizeSet bool, batchSize int) (bench.SoakConfig, error) {
	cfg := bench.DefaultSoakConfig(s.duration)
	cfg.Interval = s.interval
	cfg.IndexURL = s.index
	if s.workers > 0 {
		cfg.Workers = s.workers
	}
	if batchSizeSet {
		cfg.BatchSize = batchSize
		cfg.HeavyPerBatch = max(1, batchSize*3/5)
	}
	if s.index != "" && !strings.HasPrefix(s.index, "postgres://") && !strings.HasPrefix(s.index, "postgresql://") {
		return cfg, usageErrorf("--soak-index: want a postgres:// or postgresql:// URL, got %q", s.index)
	}
	return cfg, cfg.Validate()
}

// runSoak runs the soak on the opened network and prints its report; its
// SQLite index goes in the temporary directory of a network the bench
// brought up.
func runSoak(ctx context.Context, g *globalOptions, out io.Writer, cfg bench.SoakConfig, n *bench.Network, saveJSON string) error {
	if cfg.IndexURL == "" && n.TempDir() != "" {
		cfg.IndexDir = filepath.Join(n.TempDir(), "index")
	}
	rep, runErr := bench.RunSoak(ctx, cfg, n.Target)
	if rep == nil {
		return runErr
	}
	var werr error
	if g.json() {
		werr = rep.WriteJSON(out)
	} else {
		werr = rep.WriteTable(out)
	}
	if werr == nil && saveJSON != "" {
		werr = saveJSONFile(saveJSON, rep.WriteJSON)
	}
	if runErr == nil {
		runErr = werr
	}
	return runErr
}

// saveJSONFile writes a JSON report with write to path.
func saveJSONFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--save: %w", err)
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("--save: %w", err)
	}
	return f.Close()
}

// startBlockProfile records blocking events (every one that lasts 10µs or
// more) until the returned func runs, which writes them to path.
func startBlockProfile(path string, log *slog.Logger) func() {
	runtime.SetBlockProfileRate(int((10 * time.Microsecond).Nanoseconds()))
	return func() {
		runtime.SetBlockProfileRate(0)
		f, err := os.Create(path)
		if err != nil {
			log.Error("--blockprofile", "err", err)
			return
		}
		if err := pprof.Lookup("block").WriteTo(f, 0); err != nil {
			log.Error("--blockprofile", "err", err)
		}
		if err := f.Close(); err != nil {
			log.Error("--blockprofile", "err", err)
		}
	}
}

// saveReport writes the JSON report to path.
func saveReport(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--save: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("--save: %w", err)
	}
	return f.Close()
}

// startCPUProfile profiles this process into path until the returned func runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func closeBenchNetwork(n *bench.Network, log *slog.Logger) {
	if n == nil {
		return
	}
	// The run's context may be cancelled (Ctrl-C): take the network down anyway.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		log.Error("bench: taking the network down failed; stop it with `iotledger network down --state-dir "+n.Net.StateDir()+"`", "err", err)
	}
}

// parseConcurrency reads "16,64,256".
func parseConcurrency(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, usageErrorf("invalid concurrency %q: want positive worker counts separated by commas, e.g. 16,64,256", s)
		}
		out = append(out, n)
	}
	return out, nil
}
