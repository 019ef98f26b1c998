/**
 * rpc's control-plane half: the node's RPC port (`control-plane-port.ts`), which `peak server`
 * opens for the SDK's hot calls; the host gets it through `src/server/modules.ts`.
 */
export { type ControlPlaneRpcOptions, ControlPlaneRpcServer } from './control-plane-port.js';
