import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { InstanceProfile, type IPrincipal, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { STACK_OUTPUTS, type TableKey } from '../../functions/src/workflow-definition.js';
import { WorkflowPipeline, pascalCase, type WorkflowPipelineProps } from './workflow-pipeline.js';

/**
 * Who may take the role the stack makes for edge sites: IAM Roles Anywhere through one trust anchor
 * (a site's server with an X.509 certificate of the site's CA), EC2 (an instance profile is made
 * with it), or a principal of your own.
 */
export type EdgeRoleTrust = { readonly rolesAnywhereTrustAnchorArn: string } | 'ec2' | IPrincipal;

export type HoldfastStackProps = StackProps &
  WorkflowPipelineProps & {
    /** A role for edge sites, granted what the edge does in the region (`grantEdge`), trusting this; none by default. */
    readonly edgeRole?: EdgeRoleTrust;
  };

/**
 * One workflow's pipeline. Its outputs, under the names of STACK_OUTPUTS, give what clients,
 * operators and edge sites need: the region, the workflow's name, the queue URLs, table names,
 * the alarm topic it created and the edge's role (the edge reads them as `cdk deploy --outputs-file` writes them).
 */
export class HoldfastStack extends Stack {
  readonly pipeline: WorkflowPipeline;
  /** The role edge sites take, when `edgeRole` asked for one. */
  readonly edgeRole?: Role;

  constructor(scope: Construct, id: string, props: HoldfastStackProps) {
    super(scope, id, props);
    this.pipeline = new WorkflowPipeline(this, 'Pipeline', props);

    new CfnOutput(this, STACK_OUTPUTS.region, { value: this.region });
    new CfnOutput(this, STACK_OUTPUTS.workflowName, { value: props.workflow.name });
    for (const { definition, queue, deadLetterQueue } of this.pipeline.stages) {
      const name = pascalCase(definition.name);
      new CfnOutput(this, `${name}${STACK_OUTPUTS.queueUrlSuffix}`, { value: queue.queueUrl });
      new CfnOutput(this, `${name}DeadLetter${STACK_OUTPUTS.queueUrlSuffix}`, { value: deadLetterQueue.queueUrl });
    }
    new CfnOutput(this, STACK_OUTPUTS.humanReviewQueueUrl, { value: this.pipeline.humanReviewQueue.queueUrl });
    for (const [key, table] of Object.entries(this.pipeline.tables)) {
      new CfnOutput(this, STACK_OUTPUTS.tables[key as TableKey], { value: table.tableName });
    }
    // A topic of the team's own is theirs to know.
    if (this.pipeline.alarmTopic && (props.alarmTopic ?? true) === true) new CfnOutput(this, STACK_OUTPUTS.alarmTopicArn, { value: this.pipeline.alarmTopic.topicArn });

    if (props.edgeRole) {
      this.edgeRole = this.createEdgeRole(props.edgeRole);
      new CfnOutput(this, STACK_OUTPUTS.edgeRoleArn, { value: this.edgeRole.roleArn });
    }
  }

  private createEdgeRole(trust: EdgeRoleTrust): Role {
    const assumedBy =
      trust === 'ec2'
        ? new ServicePrincipal('ec2.amazonaws.com')
        : 'rolesAnywhereTrustAnchorArn' in trust
          ? // Only sessions through the site's trust anchor: any other anchor of the account is refused.
            new ServicePrincipal('rolesanywhere.amazonaws.com').withConditions({ ArnEquals: { 'aws:SourceArn': trust.rolesAnywhereTrustAnchorArn } })
          : trust;
    const role = new Role(this, 'EdgeRole', { assumedBy, description: `Holdfast edge sites in front of ${this.stackName}` });
    // Roles Anywhere hands the certificate's subject over as session tags and the source identity.
    if (trust !== 'ec2' && 'rolesAnywhereTrustAnchorArn' in trust) {
      role.assumeRolePolicy!.addStatements(new PolicyStatement({ principals: [assumedBy], actions: ['sts:TagSession', 'sts:SetSourceIdentity'] }));
    }
    if (trust === 'ec2') {
      const profile = new InstanceProfile(this, 'EdgeInstanceProfile', { role });
      new CfnOutput(this, STACK_OUTPUTS.edgeInstanceProfileName, { value: profile.instanceProfileName });
    }
    this.pipeline.grantEdge(role);
    return role;
  }
}
