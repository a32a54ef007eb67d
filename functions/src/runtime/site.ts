/**
 * Where an agent runs: the region (AWS) or an edge site (the on-prem shim, while the region is down).
 * The id also names the site as a writer of multi-writer state (counters, checkpoints).
 */
export interface Site {
  readonly id: string;
  readonly atEdge: boolean;
}

/** The region's writer id; edge sites choose their own (HOLDFAST_EDGE_SITE_ID). */
export const REGION_SITE_ID = 'region';

export const REGION: Site = { id: REGION_SITE_ID, atEdge: false };

/** Which site did something, and when: kept on step records so an operator can tell where each step ran. */
export interface SiteMark {
  readonly site: string;
  readonly atEdge: boolean;
  readonly at: string;
}

export function siteMark(site: Site, now = new Date()): SiteMark {
  return { site: site.id, atEdge: site.atEdge, at: now.toISOString() };
}

const SITE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** An edge site's id: 1 to 63 letters, digits, `_`, `.`, `-`; `region` is the region's own. */
export function edgeSite(id: string): Site {
  if (!SITE_ID.test(id)) throw new Error(`edge site id ${JSON.stringify(id)} must be 1 to 63 letters, digits, '_', '.' or '-'`);
  if (id === REGION_SITE_ID) throw new Error(`edge site id "${REGION_SITE_ID}" is the region's own`);
  return { id, atEdge: true };
}
