// What commands import from the dashboard.
export { startDashboard, type DashboardHandle, type DashboardOptions } from './start.js';
export { DashboardApp, type DashboardAppProps } from './app.js';
export { Dashboard, Footer, Waiting, type FooterView } from './components/dashboard.js';
export {
  useNodeStatus,
  statusRenderIntervalMs,
  dashboardEventsMax,
  type NodeStatusState,
  type UseNodeStatusInit,
} from './use-node-status.js';
export { toViewModel, wideColumnsMin, type DashboardViewModel, type TerminalSize } from './view-model.js';
