// An erred Dask task's page: its retry control and ticking times.
import { tickTimes } from "./celery_common.js";
import { bindActions } from "./celery_actions.js";

bindActions();
tickTimes();
