//! Integration tests against a real Docker engine and registry, started by
//! `fixtures/world.sh` (which also sets `DOCKER_HOST` and `CUTOVER_TEST_REGISTRY`).
//! Run them with `bash fixtures/world.sh test`.

mod auto;
mod backups;
mod campaigns;
mod compose;
mod discovery;
mod engines;
mod faults;
mod helpers;
mod install;
mod notify;
mod plans;
mod podman;
mod products;
mod recover;
mod refusals;
mod rehearse;
mod remote;
mod rollback;
mod settings;
mod signals;
mod steps;
mod swarm;
mod swarm_products;
mod tasks;
mod upgrade;
