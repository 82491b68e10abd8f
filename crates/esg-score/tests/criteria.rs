//! Criterion families of the shipped rubric, checked on real sentences.
//!
//! Sentences are quoted verbatim from the plain-text reports in
//! `../shared/corpus/reports-text/` (third-party documents, not part of this
//! repository). Page numbers: those files have no form feeds; pages are
//! separated by runs of blank lines, so "page N" below is the number of
//! `\n\n\n` separators before the sentence, plus one.
//!
//! Each family has sentences that must hit and sentences that must not
//! (negations, boilerplate, look-alikes).

use esg_score::Rubric;
use std::collections::BTreeSet;

fn hits(text: &str) -> BTreeSet<String> {
    Rubric::builtin()
        .match_text(text)
        .into_iter()
        .map(|h| h.criterion)
        .collect()
}

#[track_caller]
fn assert_hits(text: &str, ids: &[&str]) {
    let got = hits(text);
    for id in ids {
        assert!(
            got.contains(*id),
            "expected {id} to hit {text:?}; got {got:?}"
        );
    }
}

#[track_caller]
fn assert_misses(text: &str, ids: &[&str]) {
    let got = hits(text);
    for id in ids {
        assert!(
            !got.contains(*id),
            "expected {id} NOT to hit {text:?}; got {got:?}"
        );
    }
}

/// Every criterion of a theme, for "nothing of this theme may hit" checks.
fn theme_criteria(code: &str) -> Vec<String> {
    let r = Rubric::builtin();
    let t = r.theme(code).expect("theme");
    t.stages
        .iter()
        .flat_map(|s| s.criteria.iter().map(|c| c.id.clone()))
        .collect()
}

// --- TSP: targets -----------------------------------------------------------

#[test]
fn tsp_quantitative_target_with_baseline() {
    // CarMax_Inc-2022_Responsibility_Report-EN.txt, page 19 (also page 4).
    let s = "We have committed to: ► Reducing CarMax’s Scope 1 and Scope 2 GHG emissions by 50% by 2025 against our 2018 baseline; and ► Achieving net-zero carbon emissions by 2050 in accordance with the Paris Agreement.";
    assert_hits(
        s,
        &[
            "TSP.1.qualitative_goal",
            "TSP.2.quantitative_target",
            "TSP.2.baseline_year",
            "TSP.2.time_bound_commitment",
            "TSP.3.science_based",
        ],
    );
}

#[test]
fn tsp_sbti_validated_and_commitment() {
    // Netflix_Inc-SASB_Report-EN.txt, page 4.
    assert_hits(
        "Our target was validated by the Science Based Targets Initiative in July 2021.",
        &["TSP.4.sbti_validated"],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 88.
    assert_hits(
        "This target was validated and acknowledged by the Science Based Targets initiative (SBTi).",
        &["TSP.4.sbti_validated", "TSP.3.science_based"],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 86.
    assert_hits(
        "As an external expression of commitment to net zero greenhouse gas emissions, the company also signed the Business Ambition for 1.5°C, a campaign of the.",
        &["TSP.3.sbti_commitment"],
    );
    // Validation still pending is not validation.
    assert_misses(
        "Our targets have been submitted for validation by the SBTi.",
        &["TSP.4.sbti_validated"],
    );
}

#[test]
fn tsp_capex_linkage() {
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 3.
    assert_hits(
        "// We set ourselves an internal carbon price of €100 per metric ton, which is taken into account in our capital expenditure projects.",
        &["TSP.4.capex_linkage"],
    );
}

#[test]
fn tsp_negated_targets_do_not_count() {
    for s in [
        "We have not yet set targets.",
        "We have not yet set emissions reduction targets.",
        "The company has yet to set a climate target.",
        "We haven’t set any reduction targets for 2030.",
        "No science-based targets have been set.",
    ] {
        assert_misses(
            s,
            &[
                "TSP.1.qualitative_goal",
                "TSP.2.quantitative_target",
                "TSP.3.science_based",
            ],
        );
    }
    // "no later than" is not a negation.
    assert_hits(
        "We will reach net zero emissions no later than 2040.",
        &["TSP.1.qualitative_goal"],
    );
}

// --- OSP: governance ---------------------------------------------------------

#[test]
fn osp_board_oversight_and_committee() {
    // General_Motors_Co__GM_-Sustainability_Report-EN.txt, page 32.
    assert_hits(
        "The Board has the overall responsibility for risk oversight, with a focus on the most significant risks facing the company, including climate change.",
        &["OSP.3.board_oversight"],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 20.
    assert_hits(
        "Since 2022, the Supervisory Board has deployed a separate ESG Committee comprising the Chairman of the Supervisory Board and seven further members of the Supervisory Board.",
        &["OSP.3.esg_committee"],
    );
    // Washington_Real_Estate_Investment_Trust-ESG_Report-EN.txt, page 41.
    assert_hits(
        "Our ESG Department is responsible for implementing ESG efforts across the company and portfolio, managing ESG data collection and benchmarking, and providing expertise at all company levels.",
        &["OSP.1.named_owner", "DM.1.data_collection"],
    );
}

#[test]
fn osp_tcfd_prompts_are_not_evidence() {
    // General_Motors_Co__GM_-Sustainability_Report-EN.txt, page 21: a TCFD index prompt, not a claim.
    assert_misses(
        "a) Describe the board’s oversight of climaterelated risks and opportunities.",
        &["OSP.3.board_oversight"],
    );
}

#[test]
fn osp_management_system() {
    // Eni_SpA-Sustainability_Report-EN.txt, page 31 (opening of the sentence).
    assert_hits(
        "In 2021, Eni continued its activities aimed at certifying all its companies with significant HSE risks according to the ISO 45001 (management systems for health and safety at work) and ISO 14001 (environmental management systems) standards",
        &["OSP.4.management_system"],
    );
}

// --- DM: data -----------------------------------------------------------------

#[test]
fn dm_data_quality_and_verification() {
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 117.
    assert_hits(
        "The accuracy and completeness of environmental data in the Sustainability Report is subject to inherent boundaries, which result from the nature and type of data collection, data aggregation and respective necessary assumptions.",
        &["DM.1.data_collection", "DM.2.data_quality"],
    );
    // General_Motors_Co__GM_-Sustainability_Report-EN.txt, page 10.
    assert_hits(
        "It is tracked in a global utility database by source, and the data is verified by an independent third party annually.",
        &["DM.3.central_platform", "RD.4.external_assurance"],
    );
    // Netflix_Inc-SASB_Report-EN.txt, page 8.
    assert_hits(
        "Our internal audit team validates our greenhouse gas accounting methodologies and we engage EY to perform limited assurance over our greenhouse gas emissions.",
        &["DM.3.data_audit", "GHG.3.limited_assurance"],
    );
}

#[test]
fn dm_real_time_monitoring() {
    // Washington_Real_Estate_Investment_Trust-ESG_Report-EN.txt, page 21.
    assert_hits(
        "Across our commercial office portfolio, we installed Energy Intelligence Software (EIS) Metering, allowing us to monitor and analyze building energy use remotely and in real-time.",
        &["EI.3.automated_monitoring"],
    );
}

// --- GHG: accounting ----------------------------------------------------------

#[test]
fn ghg_scopes_and_protocol() {
    // GlobalFoundries-2022_Corporate_Responsibility_Report-EN.txt, page 100.
    assert_hits(
        "Our Scope 1, 2, and 3 emissions data and our climate-related metrics, goals and targets, are included in this annual Corporate Responsibility Report.",
        &["GHG.3.full_scope3", "GHG.2.scope12_complete"],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 93.
    assert_hits(
        "In line with the GHG Protocol, we report indirect emissions (Scope 2) according to both the location-based and marketbased methods.",
        &[
            "GHG.3.ghg_protocol",
            "GHG.2.scope12_complete",
            "GHG.1.emissions_reported",
        ],
    );
}

#[test]
fn ghg_assurance_levels() {
    // Eni_SpA-Sustainability_Report-EN.txt, page 65 (one extracted line).
    assert_hits(
        "Eni’s GHG emissions inventory is subject to dedicated third party verification (reasonable assurance for Scope 1 and.",
        &["GHG.4.reasonable_assurance", "GHG.3.limited_assurance"],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 117: explains what a
    // reasonable assurance engagement *would* be — not a claim of one.
    assert_misses(
        "The procedures performed in a limited assurance engagement are less in extent than for a reasonable assurance engagement; consequently, the level of assurance obtained in a limited assurance engagement is substantially lower than the assurance that would have been obtained, had a reasonable assurance engagement been performed.",
        &["GHG.4.reasonable_assurance"],
    );
}

#[test]
fn assurance_negations_do_not_count() {
    // GlobalFoundries-2022_Corporate_Responsibility_Report-EN.txt, page 74.
    let gf = "We currently do not seek independent assurance of non-financial data.";
    // NVIDIA_Corp-CSR_Report-EN.txt, page 61.
    let nv = "102-55 gRI content index GRI Index 102-56 External assurance We did not seek external assurance for the report.";
    let ids = [
        "RD.4.external_assurance",
        "GHG.3.limited_assurance",
        "GHG.4.reasonable_assurance",
        "DM.3.data_audit",
    ];
    for s in [
        gf,
        nv,
        "No assurance was obtained.",
        "No external assurance was obtained for the 2021 GHG inventory.",
        "Limited assurance was not obtained this year.",
    ] {
        assert_misses(s, &ids);
    }
}

// --- RD: reporting --------------------------------------------------------------

#[test]
fn rd_frameworks() {
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 4.
    assert_hits(
        "In our climate reporting we follow the recommendations of the Task Force on Climate-related Financial Disclosures (TCFD) and publish a separate index in.",
        &["RD.2.tcfd_issb"],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 4.
    assert_hits(
        "This report has been prepared in accordance with the GRI Standards: Core option.",
        &["RD.2.annual_framework_reporting", "RD.1.report_or_index"],
    );
    // Synthetic: the stage-3/4 vocabulary.
    assert_hits(
        "We report under the CSRD and tag our ESRS disclosures in iXBRL.",
        &["RD.3.csrd_esrs", "RD.4.digital_tagging"],
    );
    assert_hits(
        "Our double materiality assessment was updated in 2023.",
        &["RD.3.double_materiality"],
    );
}

// --- EI: energy ---------------------------------------------------------------

#[test]
fn ei_energy_management() {
    // NVIDIA_Corp-CSR_Report-EN.txt, page 52.
    assert_hits(
        "To bring a more structured approach to managing energy efficiency at several of our key data center locations, we have an energy management system certified to the ISO 50001 standard.",
        &["EI.3.automated_monitoring"],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 94: a line of the energy table.
    assert_hits(
        "Secondary energy consumption for third-party companies 131 118.",
        &["EI.1.energy_consumption"],
    );
    assert_misses(
        "We do not yet monitor energy consumption at our sites.",
        &["EI.1.energy_consumption"],
    );
}

// --- RMM: risk ----------------------------------------------------------------

#[test]
fn rmm_taxonomy_scenarios_erm() {
    // General_Motors_Co__GM_-Sustainability_Report-EN.txt, page 24.
    assert_hits(
        "We categorize risks as physical and transition risks.",
        &["RMM.2.risk_taxonomy"],
    );
    // GlobalFoundries-2022_Corporate_Responsibility_Report-EN.txt, page 99.
    assert_hits(
        "In early 2022, we conducted a TFCD-aligned climate risk assessment and a qualitative scenario analysis that utilized selected low and high emissions scenarios.",
        &[
            "RMM.3.scenario_testing",
            "RMM.2.periodic_assessment",
            "RD.2.tcfd_issb",
        ],
    );
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 89.
    assert_hits(
        "Climate-related risks are already accounted for in our Group-wide Enterprise Risk Management (ERM) system.",
        &["RMM.4.erm_integration", "RMM.1.risk_statement"],
    );
    // General_Motors_Co__GM_-Sustainability_Report-EN.txt, page 32.
    assert_hits(
        "By institutionalizing climate change risks as part of our enterprise risk management function, we believe GM is better positioned to anticipate, detect and, ultimately, plan around these changes.",
        &["RMM.4.erm_integration"],
    );
    assert_misses(
        "We have not assessed climate-related risks.",
        &["RMM.2.periodic_assessment", "RMM.1.risk_statement"],
    );
}

// --- Overrides ----------------------------------------------------------------

#[test]
fn clean_assurance_conclusion_is_not_a_contradiction() {
    let r = Rubric::builtin();
    let ov = |id: &str| {
        r.overrides
            .iter()
            .find(|o| o.id == id)
            .expect("override")
            .rule
            .clone()
    };
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 118.
    let clean = "Practitioner’s Conclusion Based on the work performed and the evidence obtained, nothing has come to our attention that causes us to believe that the information contained in the Sustainability Report 2021 of Bayer Aktiengesellschaft for the period from January 1 to December 31, 2021, has not been prepared, in all material respects, in accordance with the GRI Standards provided in the “Core” option.";
    assert!(
        r.find(&ov("override.auditor_contradiction"), clean)
            .is_empty()
    );
    assert!(r.find(&ov("override.failed_assurance"), clean).is_empty());
    // Synthetic findings.
    assert!(
        !r.find(
            &ov("override.auditor_contradiction"),
            "Basis for qualified conclusion: Scope 3 emissions were materially misstated."
        )
        .is_empty()
    );
    assert!(!r.find(&ov("override.failed_assurance"), "We were unable to obtain sufficient appropriate evidence and issue a disclaimer of conclusion.").is_empty());
    // "unqualified opinion" is not a qualified one.
    assert!(
        r.find(
            &ov("override.auditor_contradiction"),
            "The auditor issued an unqualified opinion."
        )
        .is_empty()
    );
}

#[test]
fn no_theme_hits_unrelated_text() {
    // Bayer_AG-2021_Sustainability_Report-EN.txt, page 57.
    let s = "The patients do not know which group they belong to.";
    for code in ["TSP", "OSP", "DM", "GHG", "RD", "EI", "RMM"] {
        assert_misses(
            s,
            &theme_criteria(code)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
    }
}

// --- Issue #17: miss families found by the validity set -------------------------
//
// Sources below are the corpus files (`reports/` for the PDF and HTML
// originals, `reports-text/` for the extracted text) with the PDF page; a
// sentence marked "written" uses the wording of the issue, not a corpus quote.

#[test]
fn osp_internal_control_over_financial_reporting_is_not_esg_internal_audit() {
    // (d) Apple_Inc-2023_Form_10-K.html, Item 9A (management's report): financial controls.
    assert_misses(
        "The Company’s management is responsible for maintaining effective internal control over financial reporting and for its assessment of the effectiveness of internal control over financial reporting included in the accompanying Management’s Annual Report on Internal Control over Financial Reporting.",
        &["OSP.4.internal_audit"],
    );
    // (d) Apple_Inc-2023_Form_10-K.html, Item 1C: cybersecurity oversight is not ESG oversight.
    assert_misses(
        "The Audit Committee regularly reviews and discusses the Company’s cybersecurity risks with management, including the Company’s Head of Corporate Information Security, its General Counsel and the Heads of Compliance and Business Conduct, Business Assurance, and Internal Audit, and receives updates, as necessary, regarding cybersecurity incidents.",
        &["OSP.4.internal_audit", "OSP.3.board_oversight"],
    );
    // Still evidence: internal audit over a sustainability process
    // (Netflix_Inc-SASB_Report.pdf, page 4).
    assert_hits(
        "We are also actively engaged in an enterprise-wide climate risk assessment process, led by our Internal Audit and Sustainability teams.",
        &["OSP.4.internal_audit"],
    );
}

#[test]
fn ei_renewable_procurement_share_and_lighting() {
    // (c) Netflix_Inc-SASB_Report.pdf, page 14.
    assert_hits(
        "• Procured renewable electricity and certificates in an amount equal to all of our Scope 2 emissions.",
        &["EI.2.efficiency_projects"],
    );
    // (c) Vodafone_Group_PLC-SASB_Index.pdf (HTML), TC-TL-130a.1.
    assert_hits(
        "As a result of our progress in Europe, 73% of total energy consumed across the Group was from renewable sources during the year [TC-TL-130a.1(3)] (FY21: 53%).",
        &["EI.2.efficiency_projects"],
    );
    // (c) written, the wording.
    assert_hits(
        "Our clean energy procurement covers all data centres.",
        &["EI.2.efficiency_projects"],
    );
    // (c) Sligro_Food_Group_NV-2015_Corporate_Social_Responsibility_Report.pdf, page 19 (shortened).
    assert_hits(
        "Typical energy-related improvements are the use of LED lighting, CO2-based refrigeration systems, optimised control systems.",
        &["EI.2.efficiency_projects"],
    );
    // A renewable-energy target is not a sourcing project
    // (labels/tcfd_disclosures.csv, a Metrics and Targets c) row).
    assert_misses(
        "We aim to achieve 100% renewable energy globally on an annual basis.",
        &["EI.2.efficiency_projects"],
    );
}

#[test]
fn tsp_deadline_wording() {
    // (c) written, the wording: "… 50 % or more in 2030".
    assert_hits(
        "We aim to reduce our absolute Scope 1 and 2 emissions by 50 % or more in 2030.",
        &["TSP.2.quantitative_target"],
    );
    // (c) NVIDIA_Corp-CSR_Report.pdf, page 53: a two-digit fiscal year.
    assert_hits(
        "Source 100% of global electricity use from renewable energy by end of FY25.",
        &["TSP.2.quantitative_target"],
    );
    // Past performance is not a target.
    assert_misses(
        "Scope 1 and 2 emissions fell 12% or more in 2021 at most sites.",
        &["TSP.2.quantitative_target"],
    );
    // NVIDIA_Corp-CSR_Report.pdf, page 53.
    assert_misses(
        "We sourced 38% of our FY22 electricity use from renewable sources, a 13 percentage point increase from the previous year.",
        &["TSP.2.quantitative_target"],
    );
}

#[test]
fn tsp_science_based_wording_and_negation() {
    // (c) written, the wording.
    assert_hits(
        "Our near-term emissions targets are aligned with 1.5 °C.",
        &["TSP.3.science_based"],
    );
    // (c) written; "º" (ordinal sign) as Headlam_Group_Plc-2025_Sustainability_Report.txt writes degrees.
    assert_hits(
        "Our reduction targets follow a 1.5 ºC pathway.",
        &["TSP.3.science_based"],
    );
    // (d) written, the wording: not adopted, only "considered".
    assert_misses(
        "The Group has not adopted Science Based Targets, but we actively consider SBTi guidance when setting our climate goals.",
        &[
            "TSP.3.science_based",
            "TSP.3.sbti_commitment",
            "TSP.4.sbti_validated",
        ],
    );
    // Headlam_Group_Plc-2025_Sustainability_Report.txt, virtual page 17: scenarios, not targets.
    assert_misses(
        "The scenarios chosen were: global warming of 2ºC (RCP 3.4), considered the most likely scenario; and global warming of 4ºC (RCP 8.5), considered a resilience scenario.",
        &["TSP.3.science_based"],
    );
}

#[test]
fn rd_nfrd_and_national_transpositions() {
    // (c) Eni_SpA-Sustainability_Report.pdf, page 4.
    assert_hits(
        "This document constitutes the Consolidated Disclosure of Non-Financial Information (Legislative Decree 254/2016) published within the Annual Report.",
        &["RD.3.csrd_esrs"],
    );
    // (c) Bayer_AG-2021_Sustainability_Report.pdf, page 29.
    assert_hits(
        "The materiality analysis serves to meet external requirements in accordance with the CSR Directive Implementation Act (CSR-RUG), the German Commercial Code (Sections 289b to e) and the GRI Standards.",
        &["RD.3.csrd_esrs"],
    );
    // (c) written, the wording.
    assert_hits(
        "Our statement is prepared under Directive 2014/95/EU.",
        &["RD.3.csrd_esrs"],
    );
    // Another decree (Eni_SpA-Sustainability_Report.pdf, page 40, shortened).
    assert_misses(
        "The update of the Whistleblowing Procedure covers unlawful conduct pursuant to Legislative Decree 231 of 2001.",
        &["RD.3.csrd_esrs"],
    );
}

#[test]
fn rd_report_types_and_assurance_wording() {
    // (c) written: "Integrated Annual Report" is a recognised report type.
    assert_hits(
        "Our Integrated Annual Report 2021 covers financial and sustainability performance.",
        &["RD.1.report_or_index", "RD.4.integrated_filing"],
    );
    // Eni_SpA-Sustainability_Report.pdf, page 4 (shortened): "integrated" alone is no report.
    assert_misses(
        "Eni has developed an integrated business model for the energy transition.",
        &["RD.1.report_or_index", "RD.4.integrated_filing"],
    );
    // (c) Bayer_AG-2021_Sustainability_Report.pdf, page 4.
    assert_hits(
        "The auditing company Deloitte GmbH Wirtschaftsprüfungsgesellschaft (Deloitte), Munich, Germany, subjected this Sustainability Report of Bayer AG, Leverkusen, for the fiscal year from January 1, 2021, to December 31, 2021, to an audit with limited assurance.",
        &["RD.4.external_assurance"],
    );
    // Written look-alike.
    assert_misses(
        "Internal audits with limited resources were postponed to next year.",
        &["RD.4.external_assurance"],
    );
}

#[test]
fn rd_cross_framework_index_listings_and_alignment_wording() {
    // (c) GlobalFoundries-2022_Corporate_Responsibility_Report.pdf, page 2 (contents).
    assert_hits(
        "Sustainable manufacturing Responsible sourcing About this report Site profiles GRI index SASB index TCFD table",
        &["RD.3.cross_framework"],
    );
    // (c) General_Motors_Co__GM_-Sustainability_Report.pdf, page 1 (contents with page numbers).
    assert_hits(
        "2021 Sustainability Supplement IN THIS SECTION GRI Content Index 1 SASB Response 18 TCFD Response 20 UN SDG 34",
        &["RD.3.cross_framework"],
    );
    // One framework is not several (Bayer_AG-2021_Sustainability_Report.pdf, page 4).
    assert_misses(
        "This report has been prepared in accordance with the GRI Standards: Core option.",
        &["RD.3.cross_framework"],
    );
    // (c) PepsiCo_Inc-SASB_Index.pdf, page 1.
    assert_hits(
        "This report marks the second time PepsiCo has reported in alignment with the Sustainability Accounting Standards Board (SASB) standards.",
        &["RD.2.annual_framework_reporting"],
    );
    // PepsiCo_Inc-SASB_Index.pdf, page 1: negated alignment.
    assert_misses(
        "In addition, certain disclosures may not be fully aligned with SASB’s definition, but represent the closest approximation possible.",
        &["RD.2.annual_framework_reporting"],
    );
}

#[test]
fn iso_prefix_shared_by_two_standards() {
    // (c) written, the wording: one "ISO", two standards.
    assert_hits(
        "Our sites are certified to ISO 14001 and 50001.",
        &["EI.3.automated_monitoring", "OSP.4.management_system"],
    );
    // Written look-alike: other ISO standards.
    assert_misses(
        "Our data centres are certified to ISO 9001 and 27001.",
        &["EI.3.automated_monitoring", "OSP.4.management_system"],
    );
}

#[test]
fn dm_measurement_and_report_cycles() {
    // (c) Sligro_Food_Group_NV-2015_Corporate_Social_Responsibility_Report.pdf, page 19.
    assert_hits(
        "Energy consumption is measured at regular intervals in order to monitor whether we are staying within the bandwidth of our energy supply contracts.",
        &["DM.1.data_collection"],
    );
    // (c) Sligro_Food_Group_NV-2015_Corporate_Social_Responsibility_Report.pdf, page 18.
    assert_hits(
        "A CO2 report is produced and discussed every six months.",
        &["DM.1.data_collection"],
    );
    // Written look-alike: a report that is no ESG data process.
    assert_misses(
        "The annual report is produced in Dutch and English.",
        &["DM.1.data_collection"],
    );
}

#[test]
fn rd_financial_statement_audit_and_tagging_are_not_esg_assurance() {
    // (d) Apple_Inc-2023_Form_10-K.html, Item 15 (exhibits): XBRL of the financial statements.
    assert_misses(
        "Inline XBRL Document Set for the consolidated financial statements and accompanying notes in Part II, Item 8, “Financial Statements and Supplementary Data” of this Annual Report on Form 10-K.",
        &["RD.4.digital_tagging"],
    );
    // (d) Apple_Inc-2023_Form_10-K.html, Item 9A: the financial auditor's report.
    assert_misses(
        "The Company’s independent registered public accounting firm, Ernst & Young LLP, has issued an audit report on the Company’s internal control over financial reporting, which appears in Part II, Item 8 of this Form 10-K.",
        &["RD.4.external_assurance"],
    );
    // Still evidence (written): sustainability tagging and verification.
    assert_hits(
        "We report under the CSRD and tag our ESRS disclosures in iXBRL.",
        &["RD.4.digital_tagging"],
    );
    assert_hits(
        "Our sustainability disclosures were verified by Bureau Veritas.",
        &["RD.4.external_assurance"],
    );
    // Verification of the emission figures alone is GHG evidence, not
    // assurance of the disclosures (see
    // rd_assurance_of_ghg_figures_only_is_not_report_assurance).
    assert_misses(
        "Our Scope 1 and 2 emissions were verified by Bureau Veritas.",
        &["RD.4.external_assurance"],
    );
}

#[test]
fn ghg_scope_figures_in_table_rows() {
    // (c) General_Motors_Co__GM_-Sustainability_Report.pdf, page 34: a table, not a sentence.
    assert_hits(
        "2021 Emissions Performance Emissions Metric Tons CO2e1 Scope 1 (2021) 1,252,9062 Scope 2 (2021) 2,150,6943 Scope 3 (2020) 296,411,3273",
        &["GHG.2.scope12_complete"],
    );
    // (c) Headlam_Group_Plc-2025_Sustainability_Report.txt, virtual page 3 (shortened).
    assert_hits(
        "Full Year Data 91% 9% Scope 1: 91% (14.0ktCO2e) Scope 2: 9% (1.6ktCO2e) Net Zero Emissions Timeline",
        &["GHG.2.scope12_complete"],
    );
    // Written look-alikes: years are no figures, one scope is not both.
    assert_misses(
        "We will start to report Scope 1 in 2024 and Scope 2 from 2025 onwards.",
        &["GHG.2.scope12_complete"],
    );
    assert_misses(
        "Scope 1 emissions were 12,000 tCO2e, mostly from natural gas.",
        &["GHG.2.scope12_complete"],
    );
}

#[test]
fn rd_assurance_of_ghg_figures_only_is_not_report_assurance() {
    // NVIDIA_Corp-CSR_Report-EN.txt, page 51: assurance of the GHG inventory
    // is GHG evidence, not assurance of the sustainability disclosures (the
    // report says on page 61 "We did not seek external assurance for the report").
    let nv = "S&P Sustainable1 provides moderate assurance under the AA1000AS v3 assurance standards on our FY22 global scope 1, scope 2, and scope 3 fuel- and energy-related activities (category 3) and business travel (category 6).";
    assert_misses(nv, &["RD.4.external_assurance"]);
    assert_hits(nv, &["GHG.3.limited_assurance"]);
    // Vertex_Pharmaceuticals_Inc-CSR_Report-EN.txt (GHG table footnote).
    assert_misses(
        "ERM CVS provided limited assurance of Scope 1 GHG emissions, Scope 2 (market-based) GHG emissions and total emissions.",
        &["RD.4.external_assurance"],
    );
    // NVIDIA_Corp-CSR_Report-EN.txt, page 57: suppliers' GHG figures verified.
    assert_misses(
        "These suppliers must also have their GHG emissions verified by a third party.",
        &["RD.4.external_assurance"],
    );
    // Written: the inventory alone verified.
    assert_misses(
        "Our greenhouse gas inventory was verified by DNV.",
        &["RD.4.external_assurance"],
    );
    // Must still match: assurance of the report itself.
    assert_hits(
        "This sustainability report was verified by SGS.",
        &["RD.4.external_assurance"],
    );
    // Swisscom_AG-2021_Sustainability_Report-EN.txt, page 59.
    assert_hits(
        "SGS was commissioned by Swisscom to conduct an independent assurance of the GRI-based disclosure on sustainability in 2021.",
        &["RD.4.external_assurance"],
    );
    // Written: a report whose assured scope includes emissions after a comma.
    assert_hits(
        "KPMG issued an independent assurance report on our Sustainability Report, including Scope 1 and 2 emissions.",
        &["RD.4.external_assurance"],
    );
}

#[test]
fn tsp_target_stated_as_a_cut_between_two_years() {
    // (c) Sligro_Food_Group_NV-2015_Corporate_Social_Responsibility_Report-EN.txt, page 18.
    assert_hits(
        "We aim to cut our CO2 emissions per sales euro by 20% between 2010 and 2020, which is why we refer to it as our '20-20 target'",
        &["TSP.2.quantitative_target"],
    );
    // Written: the same form with another verb.
    assert_hits(
        "Our goal is to reduce water use by 15 percent between 2020 and 2030.",
        &["TSP.2.quantitative_target"],
    );
    // Must not match: performance over a past period is not a target.
    assert_misses(
        "We reduced our CO2 emissions per sales euro by 20% between 2010 and 2020.",
        &["TSP.2.quantitative_target"],
    );
}

#[test]
fn ei_efficiency_and_renewable_projects_wording() {
    // (c) Johnson___Johnson-SASB_Index-EN.txt, page 33.
    assert_hits(
        "While energy costs as a percent of sales is very low for Johnson & Johnson (<1% in 2021), we continuously evaluate and implement efficiency and renewable energy projects that reduce our energy consumption and costs.",
        &["EI.2.efficiency_projects"],
    );
    assert_hits(
        "Resource efficiency and resilience through the adoption of energy- and water-efficiency measures and the utilization of renewable energy.",
        &["EI.2.efficiency_projects"],
    );
    assert_hits(
        "An increase in cost from climate change regulation can make the capital investment in renewable energy and energy and water efficiency more attractive.",
        &["EI.2.efficiency_projects"],
    );
    // Must not match: water efficiency alone, a sector, a market.
    assert_misses(
        "Water-efficiency measures were introduced at two sites.",
        &["EI.2.efficiency_projects"],
    );
    assert_misses(
        "The renewable energy sector attracted record investment last year.",
        &["EI.2.efficiency_projects"],
    );
}

#[test]
fn osp_cross_functional_teams_count_only_for_esg() {
    // Vertex_Pharmaceuticals_Inc-CSR_Report-EN.txt, page 18: still a committee.
    assert_hits(
        "Our Environmental, Health, Safety and Sustainability (EHSS) team, along with an internal, cross-functional Sustainability Committee, oversees and implements these efforts in accordance with Vertex’s commitment to sustainability, health and safety.",
        &["OSP.3.esg_committee"],
    );
    // Washington_Real_Estate_Investment_Trust-ESG_Report-EN.txt: an ESG team.
    assert_hits(
        "This is led by a cross-functional team of ESG, Property Management, Asset Management, Investment, Legal, Finance, Communication, and Development.",
        &["OSP.3.esg_committee"],
    );
    // (d) Must not match: cross-functional teams for other subjects.
    // Vertex_Pharmaceuticals_Inc-CSR_Report-EN.txt, page 25.
    assert_misses(
        "Vertex’s Secure Supply Chain Council is a cross-functional team that leads our work to prevent, detect and respond to instances of product diversion, tampering and counterfeiting.",
        &["OSP.3.esg_committee"],
    );
    // NVIDIA_Corp-CSR_Report-EN.txt.
    assert_misses(
        "Cross-functional teams manage all aspects of product quality.",
        &["OSP.3.esg_committee"],
    );
}
