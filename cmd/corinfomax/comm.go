package main

import (
	"fmt"

	"github.com/corinfomax/corinfomax/dist"
	"github.com/corinfomax/corinfomax/dist/mpi"
)

// openComm returns the job's communicator: MPI_COMM_WORLD when mpirun or
// srun started this process, else the single-process dist.Local (and MPI
// is never initialised).
func openComm() (dist.Comm, error) {
	if !mpi.Launched() {
		return dist.Local{}, nil
	}
	c, err := mpi.Init()
	if err != nil {
		return nil, fmt.Errorf("starting MPI (this process was launched by mpirun or srun): %w", err)
	}
	return c, nil
}
