/**
 * The cert-manager controllers, in the order the Manager registers them.
 * Each declares what it watches next to its reconciler; adding one is a line
 * here.
 */
import type { ControllerRegistration } from '../kube/controller.ts';
import { certificateRequestsController } from './certificaterequests.ts';
import { certificatesController } from './certificates.ts';
import { challengesController } from './challenges.ts';
import type { Context } from './context.ts';
import { clusterIssuerController, issuerController } from './issuers.ts';
import { ordersController } from './orders.ts';
import { renewalInfoController } from './renewalinfo.ts';

export const CERT_MANAGER_CONTROLLERS: readonly ControllerRegistration<Context>[] = [
  certificatesController,
  certificateRequestsController,
  ordersController,
  challengesController,
  issuerController,
  clusterIssuerController,
  renewalInfoController,
];
